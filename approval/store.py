"""Approval stores: the record of each request, changed only by compare-and-set on its version.

Semantics shared by every store (``MemoryApprovalStore`` here, ``RedisApprovalStore`` in
``approval.redis_store``):

- ``create(record)`` refuses an existing request id (``RecordExists``).
- ``transition(...)`` runs ``apply_transition`` against the stored record and writes the outcome only if the
  record is still the one it was computed from (atomic compare-and-set). A stale ``expected_version`` is
  not an exception: it is a refusal (``accepted`` false, code ``stale_version``) that carries the current
  state and version. An unknown request raises ``UnknownRequest``.
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
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from approval.transitions import ApprovalRecord, TransitionResult, apply_transition, format_instant

if TYPE_CHECKING:
    from approval.redis_store import RedisApprovalStore

MAX_REQUEST_ID_LENGTH = 200
MAX_IDEMPOTENCY_KEY_LENGTH = 200


class StoreUnavailable(Exception):
    """The approval store's backend (Redis) is unreachable or refused us; nothing was read or written."""

    def __init__(self, detail: str = "") -> None:
        message = "approval store unavailable: Redis is unreachable"
        if detail:
            message += f" ({detail})"
        message += "; the approval store fails closed, so no transition was applied"
        message += ". Fix redis_url or Redis and retry"
        super().__init__(message)
        self.detail = detail


class RecordExists(Exception):
    """``create`` was called for a request id that already has a record."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"approval request {request_id!r} already exists; use transition() to change it")
        self.request_id = request_id


class UnknownRequest(KeyError):
    """No record for this request id."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id

    def __str__(self) -> str:
        return (
            f"unknown approval request {self.request_id!r}: route it first (approval_route saves it) "
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
            f"idempotency_key: already used for {first.event} by {first.actor_id!r} on this request; "
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
    """A process-local store behind one lock: for tests and embedded (single-process) use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, ApprovalRecord] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._idempotent: dict[tuple[str, str], TransitionResult] = {}

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
            if record is None:
                raise UnknownRequest(request_id)
            result = apply_transition(
                record,
                event=event,
                actor_id=actor_id,
                actor_level=actor_level,
                expected_version=expected_version,
                now=moment,
            )
            if result.version != record.version:
                self._records[request_id] = replace_record(record, result)
                self._history[request_id].append(transition_entry(record, result, actor_level))
            if key is not None:
                self._idempotent[(request_id, key)] = result
            return result

    def history(self, request_id: str) -> list[dict[str, Any]]:
        validate_request_id(request_id)
        with self._lock:
            return [dict(entry) for entry in self._history.get(request_id, [])]


def replace_record(record: ApprovalRecord, result: TransitionResult) -> ApprovalRecord:
    """The stored form of the record after ``result`` (stores keep the history separately)."""
    return replace(record.advanced(result), history=())


# --------------------------------------------------------------------------- configured store

_STORES: dict[str, RedisApprovalStore] = {}
_STORES_LOCK = threading.Lock()


def store_for(redis_url: str | None) -> ApprovalStore | None:
    """The Redis approval store for ``redis_url`` (one per URL, cached), or None when no URL is configured.

    Creating it does not connect; the first operation raises StoreUnavailable if Redis cannot be reached.
    """
    if redis_url is None or not redis_url.strip():
        return None
    url = redis_url.strip()
    with _STORES_LOCK:
        store = _STORES.get(url)
        if store is None:
            from approval.redis_store import RedisApprovalStore

            store = RedisApprovalStore.from_url(url)
            _STORES[url] = store
        return store


__all__ = [
    "ApprovalStore",
    "MemoryApprovalStore",
    "RecordExists",
    "StoreUnavailable",
    "UnknownRequest",
    "store_for",
    "validate_request_id",
]
