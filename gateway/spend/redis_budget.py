"""Budgets and the reply cache in Redis, shared by every plugin process.

Both belong to one workspace (`gateway.state.keys.Keys`): a store is made per workspace, and two workspaces on
one Redis never share a counter or a cached reply.

Budgets: one Lua script checks every counter a call is charged to and takes the reservation from all
of them, or from none (`_RESERVE`); every counter of a workspace has one hash tag (`Keys.budget`), so
the script touches one slot of a Redis Cluster; settling adds the difference to the real cost (`_SETTLE`). Counters
are integers in nano-USD that expire when their period ends. If Redis cannot be reached, a call under a
budget is not sent (fail closed: a per-process count could let N processes spend N times the limit).

Cache: `SET key value EX ttl` under `Keys.cache` (no tag: entries spread over a cluster); Redis
unreachable, the in-process LRU serves (scoped the same way, `gateway.spend.cache.ScopedReplyCache`).
"""

from __future__ import annotations

import json
from typing import Any

import redis

from gateway.spend.budget import BudgetStoreUnavailable, Charge, Hold, Refusal
from gateway.spend.cache import MAX_ENTRY_BYTES, ReplyCache
from gateway.state.keys import Keys
from gateway.state.redis_connection import CONNECTION_ERRORS, describe_redis_error

_RESERVE = """
local amount = tonumber(ARGV[1])
local n = #KEYS
for i = 1, n do
  local spent = tonumber(redis.call('GET', KEYS[i]) or '0')
  if spent + amount > tonumber(ARGV[1 + i]) then return {0, i, spent} end
end
local remaining = -1
for i = 1, n do
  local value = redis.call('INCRBY', KEYS[i], amount)
  local expires = tonumber(ARGV[1 + n + i])
  if expires > 0 then redis.call('EXPIREAT', KEYS[i], expires) end
  local left = tonumber(ARGV[1 + i]) - value
  if remaining < 0 or left < remaining then remaining = left end
end
return {1, 0, remaining}
"""

_SETTLE = """
local delta = tonumber(ARGV[1])
local remaining = nil
for i = 1, #KEYS do
  local value = redis.call('INCRBY', KEYS[i], delta)
  local left = tonumber(ARGV[1 + i]) - value
  if remaining == nil or left < remaining then remaining = left end
end
return remaining
"""


class RedisBudgetStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.names = keys
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)

    def _keys(self, charges: list[Charge]) -> list[str]:
        return [self.names.budget(c.key) for c in charges]

    def reserve(self, charges: list[Charge], amount: int) -> Hold | Refusal:
        if not charges:
            return Hold(charges, amount, self)
        args: list[Any] = [amount, *[c.limit for c in charges], *[int(c.expires_at) + 3600 if c.expires_at else 0 for c in charges]]
        try:
            granted, index, value = self._reserve(keys=self._keys(charges), args=args)
        except CONNECTION_ERRORS as exc:
            raise BudgetStoreUnavailable(
                f"not sent: the budgets are kept in Redis, which is unreachable ({describe_redis_error(exc, self.client)}); "
                "a call under a budget is never sent uncounted",
                attempts=0,
            ) from None
        if not int(granted):
            return Refusal(charges[int(index) - 1], int(value))
        return Hold(charges, amount, self, remaining=int(value))

    def settle(self, hold: Hold, actual: int) -> None:
        if hold.settled:
            return
        hold.settled = True
        if not hold.charges or actual == hold.amount:
            return
        try:
            left = self._settle(keys=self._keys(hold.charges), args=[actual - hold.amount, *[c.limit for c in hold.charges]])
            hold.remaining = int(left)
        except CONNECTION_ERRORS:
            hold.remaining = None  # the reservation stays counted: never less than what was spent

    def spent(self, key: str) -> int:
        return int(self.client.get(self.names.budget(key)) or 0)

    def warnings(self) -> list[str]:
        return []


class RedisReplyCache:
    def __init__(self, client: redis.Redis, fallback: ReplyCache, keys: Keys) -> None:
        self.client = client
        self.fallback = fallback  # this workspace's share of the process LRU
        self.names = keys
        self._down = False

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = self.client.get(self.names.cache(key))
            self._down = False
        except CONNECTION_ERRORS:
            self._down = True
            return self.fallback.get(key)
        return json.loads(raw) if raw else None

    def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        raw = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
        if len(raw) > MAX_ENTRY_BYTES or ttl <= 0:
            return
        try:
            self.client.set(self.names.cache(key), raw, ex=max(1, int(ttl)))
            self._down = False
        except CONNECTION_ERRORS:
            self._down = True
            self.fallback.put(key, value, ttl)

    def warnings(self) -> list[str]:
        return ["Redis (redis_url) is unreachable: the reply cache is per process until it is back"] if self._down else []


__all__ = ["RedisBudgetStore", "RedisReplyCache"]
