"""An exact-match reply cache: the same request to the same gateway with the same key gets the same reply
without a second (billed) call.

**The key** is a SHA-256 of the gateway URL, the key's digest (never the key), the model and everything
in the request that changes the answer: messages, temperature, top_p, max_tokens, stop, seed and
response_format. Two requests share an entry only if all of these are equal.

**When it is used** (`cache` parameter): `auto` (the default) only where a repeat is the same answer
by construction: temperature 0 set explicitly (a seed is part of the key, so a different seed never
matches), and not for stream_chat (a cached reply arrives as one piece: no typewriter effect, so
streaming opts in explicitly); `on` for every request (a sampled reply is then repeated as it was);
`off` neither reads nor writes. Only complete replies are stored (finish reason `stop` or `length`,
never an interrupted stream or an error).

**Where it lives**: in-process, an LRU bounded in entries and bytes, each entry with a TTL; with
`redis_url`, in Redis (`SET ... EX ttl`, entries above `MAX_ENTRY_BYTES` not stored), so other plugin
processes hit too. Redis unreachable: the in-process cache serves meanwhile.

**Whose it is**: one process and one Redis serve every workspace, so every entry is named under the
workspace's scope (`gateway.state.keys.Keys.cache`): the process LRU through `ScopedReplyCache` (one LRU, one
bound, for all workspaces), Redis through `gateway.spend.redis_budget.RedisReplyCache`. A workspace never
reads another's reply, even for the same request.

A hit costs 0 and never touches the breaker, the rate limits or the budgets; `cost_saved_usd` is what
the reply cost when it was made.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from gateway.models import ChatRequest
from gateway.state.keys import Keys

MODES = ("auto", "on", "off")
DEFAULT_TTL_SECONDS = 3600
MAX_TTL_SECONDS = 30 * 24 * 3600
MAX_ENTRIES = 2000
MAX_BYTES = 64 * 1024 * 1024
MAX_ENTRY_BYTES = 1024 * 1024
CACHEABLE_FINISH = ("stop", "length")


def cache_key(namespace: str, request: ChatRequest) -> str:
    """The digest of everything that changes the answer (payload without stream options)."""
    body = json.dumps([namespace, request.payload()], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def use_cache(mode: str, request: ChatRequest, *, streaming: bool) -> bool:
    if mode == "on":
        return True
    if mode == "off":
        return False
    return not streaming and request.temperature is not None and float(request.temperature) == 0.0


class ReplyCache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...
    def put(self, key: str, value: dict[str, Any], ttl: float) -> None: ...
    def warnings(self) -> list[str]: ...


class LRUReplyCache:
    """In-process: at most `max_entries` entries and `max_bytes` bytes of JSON, each until its TTL."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            raw = entry[1]
        return json.loads(raw)  # type: ignore[no-any-return]

    def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        raw = json.dumps(value, ensure_ascii=False)
        size = len(raw)
        if ttl <= 0 or size > min(MAX_ENTRY_BYTES * 4, self.max_bytes):
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (self._clock() + ttl, raw)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, raw = self._entries.pop(key)
        self._bytes -= len(raw)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def warnings(self) -> list[str]:
        return []


class ScopedReplyCache:
    """One workspace's share of an in-process cache: its entries are named under the workspace's scope."""

    def __init__(self, inner: LRUReplyCache, keys: Keys) -> None:
        self.inner = inner
        self.names = keys

    def get(self, key: str) -> dict[str, Any] | None:
        return self.inner.get(self.names.cache(key))

    def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        self.inner.put(self.names.cache(key), value, ttl)

    def warnings(self) -> list[str]:
        return self.inner.warnings()


class SingleFlight:
    """Concurrent identical requests: the first is sent, the others wait for its reply (then read it from
    the cache). If the first fails, the others are sent as usual."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, threading.Event] = {}

    def lead(self, key: str) -> threading.Event | None:
        """None when this caller leads (must call `land`); else the event to wait on."""
        with self._lock:
            event = self._flights.get(key)
            if event is None:
                self._flights[key] = threading.Event()
            return event

    def land(self, key: str) -> None:
        with self._lock:
            event = self._flights.pop(key, None)
        if event is not None:
            event.set()


__all__ = ["MODES", "LRUReplyCache", "ReplyCache", "ScopedReplyCache", "SingleFlight", "cache_key", "use_cache"]
