"""The dead-letter queue: notifications that still failed after their retries, and link decisions that could
not be applied (store unavailable, contention), kept in a Redis stream for a person to look at, replay or
drop.

One stream per workspace (``gateway.state.keys.Keys.approval_dead_letters``), capped at about 10,000 entries:
another workspace neither lists, replays nor drops its entries. Each entry
has ``kind`` (notification or decision), ``reason``, ``at`` (ISO 8601 UTC) and ``payload`` (JSON). No
secret is ever in it: no webhook URL, no signing secret, no link token. A notification's payload holds the
channel id, the notice and the bound fields of its links; replaying signs them again with the secrets given
to the replay. A decision's payload holds the link's bound fields.

Replay is idempotent: ``Keys.approval_dead_letter_replayed(<entry id>)`` (the stream's hash tag) is claimed with SET NX before anything is
sent or applied; once the replay succeeded it records the outcome and the entry is deleted, so a second
replay reports the first instead of sending again. A replay that fails again releases the claim and keeps
the entry.
"""

from __future__ import annotations

import json
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from approval.redis_store import redis_guard
from gateway.state.keys import Keys

MAX_ENTRIES = 10_000
REPLAY_CLAIM_SECONDS = 120
REPLAYED_TTL_SECONDS = 30 * 24 * 3600
KINDS = ("notification", "decision")
ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class DeadLetter:
    id: str
    kind: str
    reason: str
    at: str
    payload: dict[str, Any]

    def to_output(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "reason": self.reason, "at": self.at, "payload": self.payload}


class DeadLetterQueue:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self.key = keys.approval_dead_letters()

    def _guard(self) -> AbstractContextManager[None]:
        return redis_guard(self.client)

    def add(self, kind: str, reason: str, payload: dict[str, Any]) -> str:
        if kind not in KINDS:
            raise ValueError(f"kind: one of {', '.join(KINDS)}")
        fields = {
            "kind": kind,
            "reason": reason[:1000],
            "at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "payload": json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        }
        with self._guard():
            entry_id = self.client.xadd(self.key, fields, maxlen=MAX_ENTRIES, approximate=True)
        return _text(entry_id)

    def list(self, limit: int = 50, kind: str = "") -> list[DeadLetter]:
        with self._guard():
            raw = self.client.xrange(self.key, count=MAX_ENTRIES if kind else limit)
        entries = [self._entry(entry_id, fields) for entry_id, fields in raw]
        if kind:
            entries = [entry for entry in entries if entry.kind == kind]
        return entries[:limit]

    def count(self) -> int:
        with self._guard():
            return int(self.client.xlen(self.key))

    def get(self, entry_id: str) -> DeadLetter | None:
        check_entry_id(entry_id)
        with self._guard():
            raw = self.client.xrange(self.key, min=entry_id, max=entry_id, count=1)
        return self._entry(*raw[0]) if raw else None

    def drop(self, entry_id: str) -> bool:
        check_entry_id(entry_id)
        with self._guard():
            return int(self.client.xdel(self.key, entry_id)) > 0

    # ------------------------------------------------------------------ idempotent replay

    def _replayed_key(self, entry_id: str) -> str:
        return self.keys.approval_dead_letter_replayed(entry_id)

    def claim_replay(self, entry_id: str) -> dict[str, Any] | None:
        """None when this process may replay the entry now; else what is known: the first replay's outcome
        ({"state": "done", ...}) or {"state": "in_progress"}."""
        check_entry_id(entry_id)
        key = self._replayed_key(entry_id)
        with self._guard():
            if self.client.set(key, json.dumps({"state": "in_progress"}), nx=True, ex=REPLAY_CLAIM_SECONDS):
                return None
            raw = self.client.get(key)
        return json.loads(_text(raw)) if raw else {"state": "in_progress"}

    def finish_replay(self, entry_id: str, outcome: dict[str, Any]) -> None:
        """Record a successful replay and delete the entry."""
        with self._guard():
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self._replayed_key(entry_id), json.dumps({"state": "done", **outcome}), ex=REPLAYED_TTL_SECONDS)
            pipe.xdel(self.key, entry_id)
            pipe.execute()

    def release_replay(self, entry_id: str) -> None:
        with self._guard():
            self.client.delete(self._replayed_key(entry_id))

    @staticmethod
    def _entry(entry_id: Any, fields: dict[Any, Any]) -> DeadLetter:
        data = {_text(k): _text(v) for k, v in fields.items()}
        try:
            payload = json.loads(data.get("payload", "{}"))
        except ValueError:
            payload = {}
        return DeadLetter(_text(entry_id), data.get("kind", ""), data.get("reason", ""), data.get("at", ""), payload)


def check_entry_id(entry_id: object) -> str:
    if not isinstance(entry_id, str) or not ENTRY_ID.match(entry_id):
        raise ValueError("entry_id: a dead-letter id such as 1733000000000-0 (from the list action)")
    return entry_id


__all__ = ["KINDS", "DeadLetter", "DeadLetterQueue", "check_entry_id"]
