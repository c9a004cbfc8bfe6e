"""The approval store in Redis: optimistic compare-and-set through server-side scripts.

Every key belongs to one workspace: ``gateway.state.keys.Keys.approval(request_id, part)``, the workspace's scope
(a keyed digest of its API key) and the request id in one hash tag, so one script touches one slot of a
Redis Cluster and two workspaces' records never meet. The request id is validated (at most 200 printable
characters, no braces). Parts:

- ``record``  the record as JSON (created with ``SET NX``, never expires);
- ``history`` append-only list of JSON entries (``RPUSH`` only);
- ``idem:<sha256 of the key>`` the first outcome for an idempotency key (7 days);
- ``summary`` what approvers are told about the request (JSON, at most 16 KiB), written with the record by
  the route (``create(..., summary=)``) and read by an escalate to tell the next level;
- ``notified:<version>`` set once the approvers of that version were told (30 days), so a retried escalate
  (same idempotency key, same outcome) tells nobody twice.

Another workspace's store has other keys: for it the request does not exist (``get`` is None, ``transition``
raises ``UnknownRequest``, ``create`` of the same id makes an independent record).

A transition reads the record, computes the outcome with ``apply_transition`` in Python, then runs one
script that writes the new record, appends the history entry and stores the idempotency outcome only if
the record is still byte-for-byte the one that was read. If another process wrote in between, the loop
reads again and recomputes: with ``expected_version`` given, the recomputation is the stale-version refusal
carrying the current state; without it, the transition is retried against the new record (a few times).

Any Redis error (unreachable, timeout, wrong password, read-only replica) raises ``StoreUnavailable``:
the store fails closed rather than risk a lost update. The connection and the description of what went
wrong are the plugin's one Redis helper (``gateway.state.redis_connection``), shared with the gateway's state:
one connection pool per URL, and messages that never contain the password.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

import redis

from approval.records import (
    RecordExists,
    StoreUnavailable,
    UnknownRequest,
    check_idempotent_replay,
    creation_entry,
    current_time,
    replace_record,
    transition_entry,
    validate_idempotency_key,
    validate_request_id,
)
from approval.transitions import (
    CONTENTION,
    ApprovalRecord,
    Authority,
    TransitionResult,
    apply_transition,
    recorded_level,
)
from gateway.state.keys import Keys, digest
from gateway.state.redis_connection import URL_HINT, describe_redis_error, redis_client

IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600
NOTIFIED_TTL_SECONDS = 30 * 24 * 3600
MAX_SUMMARY_BYTES = 16 * 1024
MAX_ATTEMPTS = 8

# KEYS[1] record, KEYS[2] history, KEYS[3] summary (optional); ARGV[1] record JSON, ARGV[2] history entry
# JSON, ARGV[3] summary JSON.
_CREATE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  if #KEYS >= 3 then redis.call('SET', KEYS[3], ARGV[3]) end
  return 1
end
return 0
"""

# KEYS[1] record, KEYS[2] history, KEYS[3] idempotency key (optional).
# ARGV[1] the record JSON the outcome was computed from, ARGV[2] new record JSON ('' = unchanged),
# ARGV[3] history entry JSON ('' = none), ARGV[4] outcome JSON, ARGV[5] idempotency TTL in seconds.
_CAS = """
if #KEYS >= 3 then
  local first = redis.call('GET', KEYS[3])
  if first then return {'replay', first} end
end
local current = redis.call('GET', KEYS[1])
if not current then return {'missing', ''} end
if current ~= ARGV[1] then return {'conflict', current} end
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2]) end
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[3]) end
if #KEYS >= 3 then redis.call('SET', KEYS[3], ARGV[4], 'EX', tonumber(ARGV[5])) end
return {'ok', ''}
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@contextmanager
def redis_guard(client: redis.Redis) -> Iterator[None]:
    """Every Redis error becomes StoreUnavailable with a message that says what to fix (fail closed)."""
    try:
        yield
    except (redis.RedisError, OSError) as exc:
        raise StoreUnavailable(describe_redis_error(exc, client)) from None


class RedisApprovalStore:
    """ApprovalStore in Redis for one workspace (``keys``), shared by every plugin process pointing at the
    same server."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        if not isinstance(keys, Keys):
            raise ValueError("keys: the workspace's gateway.state.keys.Keys")
        self.client = client
        self.keys = keys
        self._create = client.register_script(_CREATE)
        self._cas = client.register_script(_CAS)

    @classmethod
    def from_url(cls, url: str, keys: Keys) -> RedisApprovalStore:
        """The workspace's store on the process's one client (and connection pool) for ``url``."""
        try:
            client = redis_client(url)
        except ValueError:  # redis-py's message may repeat the URL, and so the password
            raise ValueError(f"redis_url: not a Redis URL; use {URL_HINT}") from None
        return cls(client, keys)

    # ------------------------------------------------------------------ keys and errors

    def _key(self, request_id: str, part: str) -> str:
        return self.keys.approval(request_id, part)

    def _idem_key(self, request_id: str, idempotency_key: str) -> str:
        return self._key(request_id, "idem:" + digest(idempotency_key, 64))

    def _guard(self) -> AbstractContextManager[None]:
        return redis_guard(self.client)

    # ------------------------------------------------------------------ ApprovalStore

    def create(
        self, record: ApprovalRecord, *, now: datetime | None = None, summary: dict[str, Any] | None = None
    ) -> ApprovalRecord:
        """``summary``: what approvers are told about the request, kept beside the record (at most
        MAX_SUMMARY_BYTES as JSON, else ValueError) and written in the same script."""
        request_id = validate_request_id(record.request_id)
        stored = ApprovalRecord.from_dict(record.to_dict())
        keys = [self._key(request_id, "record"), self._key(request_id, "history")]
        args = [_dumps(stored.to_dict()), _dumps(creation_entry(stored, current_time(now)))]
        if summary is not None:
            text = _dumps(dict(summary))
            if len(text.encode()) > MAX_SUMMARY_BYTES:
                raise ValueError(f"summary: at most {MAX_SUMMARY_BYTES} bytes as JSON")
            keys.append(self._key(request_id, "summary"))
            args.append(text)
        with self._guard():
            created = self._create(keys=keys, args=args)
        if int(created) != 1:
            raise RecordExists(request_id)
        return stored

    def get(self, request_id: str) -> ApprovalRecord | None:
        validate_request_id(request_id)
        with self._guard():
            raw = self.client.get(self._key(request_id, "record"))
        return None if raw is None else ApprovalRecord.from_dict(json.loads(_text(raw)))

    def transition(
        self,
        request_id: str,
        *,
        event: str,
        actor_id: str,
        actor_level: str | None,
        expected_version: int | None = None,
        now: datetime | None = None,
        idempotency_key: str | None = None,
        authority: Authority | None = None,
    ) -> TransitionResult:
        validate_request_id(request_id)
        key = validate_idempotency_key(idempotency_key)
        moment = current_time(now)
        keys = [self._key(request_id, "record"), self._key(request_id, "history")]
        if key is not None:
            keys.append(self._idem_key(request_id, key))
            earlier = self._earlier_answer(keys[2], event, actor_id)
            if earlier is not None:
                return earlier
        decide = functools.partial(apply_transition, event=event, actor_id=actor_id, actor_level=actor_level,
                                   expected_version=expected_version, now=moment, authority=authority)
        level = recorded_level(event, actor_id, actor_level, authority)
        with self._guard():
            raw = self.client.get(keys[0])
        for _attempt in range(MAX_ATTEMPTS):
            if raw is None:
                raise UnknownRequest(request_id)
            read = _text(raw)
            record = ApprovalRecord.from_dict(json.loads(read))
            result = decide(record)
            status, payload = self._compare_and_set(keys, read, record, result, level)
            if status == "ok":
                return result
            if status == "replay":
                return check_idempotent_replay(self._result(payload), event=event, actor_id=actor_id)
            if status == "missing":
                raise UnknownRequest(request_id)
            # conflict: another process wrote in between. Recompute against the record it wrote: with
            # expected_version given this yields the stale-version refusal with the current state.
            raw = payload
        return _contention(request_id, record, result)

    def _earlier_answer(self, idempotency_key: str, event: str, actor_id: str) -> TransitionResult | None:
        """The result stored under this idempotency key, when the same transition was already applied."""
        with self._guard():
            first = self.client.get(idempotency_key)
        if first is None:
            return None
        return check_idempotent_replay(self._result(first), event=event, actor_id=actor_id)

    def _compare_and_set(self, keys: list[str], read: str, record: ApprovalRecord, result: TransitionResult,
                         level: str | None) -> tuple[str, Any]:
        """Write ``result`` (record, history entry, idempotent answer) only if the record is still ``read``:
        ``ok``, ``replay`` (with the earlier answer), ``missing`` or ``conflict`` (with the record now stored)."""
        changed = result.version != record.version
        with self._guard():
            status, payload = self._cas(
                keys=keys,
                args=[
                    read,
                    _dumps(replace_record(record, result).to_dict()) if changed else "",
                    _dumps(transition_entry(record, result, level)) if changed else "",
                    _dumps(result.to_dict()),
                    IDEMPOTENCY_TTL_SECONDS,
                ],
            )
        return _text(status), payload

    def history(self, request_id: str) -> list[dict[str, Any]]:
        validate_request_id(request_id)
        with self._guard():
            entries = self.client.lrange(self._key(request_id, "history"), 0, -1)
        return [json.loads(_text(entry)) for entry in entries]

    # ------------------------------------------------------------------ notifications

    def get_summary(self, request_id: str) -> dict[str, Any] | None:
        """The summary the route stored with the record; None for a request routed without one."""
        validate_request_id(request_id)
        with self._guard():
            raw = self.client.get(self._key(request_id, "summary"))
        if raw is None:
            return None
        value = json.loads(_text(raw))
        return value if isinstance(value, dict) else None

    def claim_notification(self, request_id: str, version: int) -> bool:
        """True the first time for (request, version): its approvers are to be told; False afterwards."""
        validate_request_id(request_id)
        with self._guard():
            claimed = self.client.set(self._key(request_id, f"notified:{int(version)}"), "1", nx=True,
                                      ex=NOTIFIED_TTL_SECONDS)
        return bool(claimed)

    @staticmethod
    def _result(raw: Any) -> TransitionResult:
        return TransitionResult.from_dict(json.loads(_text(raw)))


def _contention(request_id: str, record: ApprovalRecord, result: TransitionResult) -> TransitionResult:
    """The refusal when the record kept changing under every attempt."""
    return TransitionResult(
        accepted=False,
        state=record.state,
        version=record.version,
        reason=f"the request changed {MAX_ATTEMPTS} times while this transition was computed; "
        "reload and retry",
        event=result.event,
        actor_id=result.actor_id,
        at=result.at,
        required_level=record.required_level,
        code=CONTENTION,
        request_id=request_id,
    )


__all__ = ["IDEMPOTENCY_TTL_SECONDS", "MAX_SUMMARY_BYTES", "RedisApprovalStore"]
