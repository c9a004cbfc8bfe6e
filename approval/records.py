"""The approval store protocol, what every store shares, and the in-memory store.

Stores: ``MemoryApprovalStore`` here (also the record a workflow carries in its variables, for one call),
``KeyValueApprovalStore`` in ``approval.kv_store`` (Dify plugin storage), ``RedisApprovalStore`` in
``approval.redis_store``. Those modules import this one, never the reverse; ``approval.store_choice`` is the
one place that picks a store. Semantics shared by every store:

- ``create(record)`` refuses an existing request id (``RecordExists``).
- ``transition(...)`` runs ``apply_transition`` against the stored record and writes the outcome only if the
  record is still the one it was computed from (atomic compare-and-set in Redis; Dify plugin storage has no
  compare-and-set, so there two concurrent writers can lose an update). A stale ``expected_version`` is
  not an exception: it is a refusal (``accepted`` false, code ``stale_version``) that carries the current
  state and version. An unknown request raises ``UnknownRequest``, unless the store was given ``carried``:
  the record the workflow carries in its variables, used while the store holds none for that request id
  and stored once a transition changes it.
- ``idempotency_key``: the first outcome for a (request, key) pair is kept (7 days in Redis) and returned
  again for every retry with that key, accepted or refused, without applying anything twice. Reusing a key
  for a different event or actor is a caller error (ValueError).
- ``history(request_id)`` is append-only and holds the creation and every change of the record: each accepted
  transition and each expiry (a refusal that moved the request to ``expired``). Refusals that change nothing
  are returned to the caller but not written to the history.
- A store that cannot reach its backend raises ``StoreUnavailable``: it fails closed, never guesses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from approval.transitions import (
    ApprovalRecord,
    Authority,
    TransitionResult,
    apply_transition,
    format_instant,
    recorded_level,
)
from untrusted import quote

MAX_REQUEST_ID_LENGTH = 200
MAX_IDEMPOTENCY_KEY_LENGTH = 200
# The record a workflow carries for a request id (state, version, ... in its variables).
CarriedRecord = Callable[[str], ApprovalRecord]


class StoreUnavailable(Exception):
    """The approval store's backend (Redis, Dify plugin storage) is unreachable or refused us; nothing was
    applied."""

    def __init__(self, detail: str = "", *, backend: str = "Redis") -> None:
        message = f"approval store unavailable: {backend} is unreachable"
        if detail:
            message += f" ({detail})"
        message += "; the approval store fails closed, so no transition was applied"
        message += ". Fix redis_url or Redis and retry" if backend == "Redis" else ". Retry later"
        super().__init__(message)
        self.detail = detail


class RecordExists(Exception):
    """``create`` was called for a request id that already has a record."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"approval request {quote(request_id)} already exists; use transition() to change it")
        self.request_id = request_id


class UnknownRequest(KeyError):
    """No record for this request id."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id

    def __str__(self) -> str:
        return (
            f"unknown approval request {quote(self.request_id)}: route it first (approval_route saves it) "
            "or check the request_id"
        )


@runtime_checkable
class ApprovalStore(Protocol):
    def create(self, record: ApprovalRecord, *, now: datetime | None = None) -> ApprovalRecord: ...

    def get(self, request_id: str) -> ApprovalRecord | None: ...

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
    ) -> TransitionResult: ...

    def history(self, request_id: str) -> list[dict[str, Any]]: ...


# --------------------------------------------------------------------------- shared helpers


def validate_request_id(request_id: object) -> str:
    """Request ids become part of storage keys: non-empty, at most 200 printable characters, no braces."""
    if not isinstance(request_id, str) or not request_id.strip():
        raise ValueError("request_id: must be a non-empty string")
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise ValueError(f"request_id: at most {MAX_REQUEST_ID_LENGTH} characters, got {len(request_id)}")
    if not request_id.isprintable() or "{" in request_id or "}" in request_id:
        raise ValueError("request_id: only printable characters, without '{' or '}'")
    return request_id


def validate_idempotency_key(key: object) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip():
        raise ValueError("idempotency_key: must be a non-empty string or None")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise ValueError(f"idempotency_key: at most {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters")
    return key


def check_idempotent_replay(first: TransitionResult, *, event: str, actor_id: str) -> TransitionResult:
    """The stored first outcome, provided the retry asks for the same thing."""
    if first.event != event or first.actor_id != actor_id:
        raise ValueError(
            f"idempotency_key: already used for {first.event} by {quote(first.actor_id)} on this request; "
            "use a new key for a different transition"
        )
    return first


def creation_entry(record: ApprovalRecord, now: datetime) -> dict[str, Any]:
    return {"kind": "created", **record.to_dict(), "at": format_instant(now)}


def transition_entry(record: ApprovalRecord, result: TransitionResult, actor_level: str | None) -> dict[str, Any]:
    """The history entry of a change; ``actor_level`` is None when the event needed none and none was given."""
    return {
        "kind": "transition" if result.accepted else "expired",
        "request_id": record.request_id,
        "event": result.event,
        "actor_id": result.actor_id,
        "actor_level": actor_level or None,
        "accepted": result.accepted,
        "from_state": record.state,
        "state": result.state,
        "from_version": record.version,
        "version": result.version,
        "required_level": result.required_level,
        "reason": result.reason,
        "code": result.code,
        "at": result.at,
    }


def current_time(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


# --------------------------------------------------------------------------- in-memory store


class MemoryApprovalStore:
    """A process-local store behind one lock: for tests, embedded (single-process) use, and the record a
    workflow carries in its variables (a store made for one call with ``carried``)."""

    def __init__(self, *, carried: CarriedRecord | None = None) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, ApprovalRecord] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._idempotent: dict[tuple[str, str], TransitionResult] = {}
        self._carried = carried

    def create(self, record: ApprovalRecord, *, now: datetime | None = None) -> ApprovalRecord:
        validate_request_id(record.request_id)
        stored = ApprovalRecord.from_dict(record.to_dict())
        with self._lock:
            if record.request_id in self._records:
                raise RecordExists(record.request_id)
            self._records[record.request_id] = stored
            self._history[record.request_id] = [creation_entry(stored, current_time(now))]
        return stored

    def get(self, request_id: str) -> ApprovalRecord | None:
        validate_request_id(request_id)
        with self._lock:
            return self._records.get(request_id)

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
        with self._lock:
            if key is not None and (request_id, key) in self._idempotent:
                return check_idempotent_replay(
                    self._idempotent[(request_id, key)], event=event, actor_id=actor_id
                )
            record = self._records.get(request_id)
            history = self._history.get(request_id, [])
            if record is None:
                record = carried_record(self._carried, request_id)
                history = [creation_entry(record, moment)]
            result = apply_transition(
                record,
                event=event,
                actor_id=actor_id,
                actor_level=actor_level,
                expected_version=expected_version,
                now=moment,
                authority=authority,
            )
            if result.version != record.version:
                self._records[request_id] = replace_record(record, result)
                self._history[request_id] = [*history, transition_entry(record, result, recorded_level(event, actor_id, actor_level, authority))]
            if key is not None:
                self._idempotent[(request_id, key)] = result
            return result

    def history(self, request_id: str) -> list[dict[str, Any]]:
        validate_request_id(request_id)
        with self._lock:
            return [dict(entry) for entry in self._history.get(request_id, [])]


def carried_record(carried: CarriedRecord | None, request_id: str) -> ApprovalRecord:
    """The record the workflow carries for a request the store does not hold; UnknownRequest without one."""
    if carried is None:
        raise UnknownRequest(request_id)
    return carried(request_id)


def replace_record(record: ApprovalRecord, result: TransitionResult) -> ApprovalRecord:
    """The stored form of the record after ``result`` (stores keep the history separately)."""
    return replace(record.advanced(result), history=())


__all__ = [
    "ApprovalStore",
    "CarriedRecord",
    "MemoryApprovalStore",
    "RecordExists",
    "StoreUnavailable",
    "UnknownRequest",
    "validate_idempotency_key",
    "validate_request_id",
]
