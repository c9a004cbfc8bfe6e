"""The approval store in a plain key-value storage: Dify's plugin storage (``self.session.storage``).

The storage offers get, set, exist and delete of bytes, nothing more: no compare-and-set, no expiry, no
listing. So two transitions of the same request at the same moment can both read version N and the later
write wins (the README says so: use it for one approver at a time, or configure Redis). Dify keeps this
storage per workspace and plugin, so its keys need no workspace scope (``gateway.state.keys.StorageKeys``):

- ``approval_record(request_id)`` the record as JSON, with its history (one write keeps both);
- ``approval_idempotency(request_id, key)`` the first outcome for that key (the key's sha256), so the
  key's length and characters never reach the storage key.

A request the storage does not hold is taken from ``carried`` (the record the workflow passes in its
variables) and written only once a transition changes it. A storage call that fails raises
``StoreUnavailable``: nothing is guessed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

from approval.records import (
    CarriedRecord,
    RecordExists,
    StoreUnavailable,
    carried_record,
    check_idempotent_replay,
    creation_entry,
    current_time,
    replace_record,
    transition_entry,
    validate_idempotency_key,
    validate_request_id,
)
from approval.transitions import ApprovalRecord, Authority, TransitionResult, apply_transition, recorded_level
from gateway.state.keys import StorageKeys
from untrusted import quote

BACKEND = "Dify plugin storage"


class KeyValueStorage(Protocol):
    """What Dify's plugin storage offers (``self.session.storage``)."""

    def get(self, key: str) -> bytes: ...

    def set(self, key: str, val: bytes) -> None: ...

    def exist(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...


def record_key(request_id: str) -> str:
    return StorageKeys.approval_record(request_id)


def idempotency_key_of(request_id: str, idempotency_key: str) -> str:
    return StorageKeys.approval_idempotency(request_id, idempotency_key)


class KeyValueApprovalStore:
    """ApprovalStore over a get/set/exist/delete storage of bytes, without compare-and-set."""

    def __init__(self, storage: KeyValueStorage, *, carried: CarriedRecord | None = None) -> None:
        self.storage = storage
        self._carried = carried

    # ------------------------------------------------------------------ storage

    def _load(self, key: str) -> dict[str, Any] | None:
        try:
            if not self.storage.exist(key):
                return None
            raw = self.storage.get(key)
        except Exception as exc:  # whatever the storage raises: fail closed, say what failed
            raise StoreUnavailable(_failure("reading", exc), backend=BACKEND) from None
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise StoreUnavailable(f"the value under {quote(key)} is not an approval record", backend=BACKEND)
        return value

    def _save(self, key: str, value: dict[str, Any]) -> None:
        try:
            self.storage.set(key, json.dumps(value).encode())
        except Exception as exc:
            raise StoreUnavailable(_failure("writing", exc), backend=BACKEND) from None

    def _read_record(self, request_id: str) -> tuple[ApprovalRecord, list[dict[str, Any]]] | None:
        data = self._load(record_key(request_id))
        if data is None:
            return None
        history = data.get("history")
        return ApprovalRecord.from_dict(data), list(history) if isinstance(history, list) else []

    def _write_record(self, record: ApprovalRecord, history: list[dict[str, Any]]) -> None:
        self._save(record_key(record.request_id), {**record.to_dict(), "history": history})

    # ------------------------------------------------------------------ ApprovalStore

    def create(self, record: ApprovalRecord, *, now: datetime | None = None) -> ApprovalRecord:
        validate_request_id(record.request_id)
        stored = ApprovalRecord.from_dict(record.to_dict())
        if self._read_record(record.request_id) is not None:
            raise RecordExists(record.request_id)
        self._write_record(stored, [creation_entry(stored, current_time(now))])
        return stored

    def get(self, request_id: str) -> ApprovalRecord | None:
        validate_request_id(request_id)
        found = self._read_record(request_id)
        return None if found is None else found[0]

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
        idem_key = None if key is None else idempotency_key_of(request_id, key)
        if idem_key is not None:
            first = self._load(idem_key)
            if first is not None:
                return check_idempotent_replay(TransitionResult.from_dict(first), event=event, actor_id=actor_id)
        found = self._read_record(request_id)
        if found is None:
            record = carried_record(self._carried, request_id)
            history = [creation_entry(record, moment)]
        else:
            record, history = found
        result = apply_transition(
            record,
            event=event,
            actor_id=actor_id,
            actor_level=actor_level,
            expected_version=expected_version,
            now=moment,
            authority=authority,
        )
        if result.version != record.version:  # accepted, or the request expired
            entry = transition_entry(record, result, recorded_level(event, actor_id, actor_level, authority))
            self._write_record(replace_record(record, result), [*history, entry])
        if idem_key is not None:
            self._save(idem_key, result.to_dict())
        return result

    def history(self, request_id: str) -> list[dict[str, Any]]:
        validate_request_id(request_id)
        found = self._read_record(request_id)
        return [] if found is None else [dict(entry) for entry in found[1]]


def _failure(doing: str, exc: Exception) -> str:
    detail = str(exc).strip().splitlines()
    return f"{doing} failed: {type(exc).__name__}" + (f": {quote(detail[0], 200)}" if detail else "")


__all__ = ["KeyValueApprovalStore", "KeyValueStorage", "idempotency_key_of", "record_key"]
