"""Budgets and the reply cache in the real Redis on 127.0.0.1:6379: reservations from two "processes"
never pass a limit together; settling gives back the difference; Redis down means not sent."""

import threading
import time
import uuid

import pytest
import redis

from gateway.spend.budget import BudgetStoreUnavailable, Charge, Hold, Refusal
from gateway.spend.cache import LRUReplyCache
from gateway.spend.redis_budget import RedisBudgetStore, RedisReplyCache
from gateway.state.keys import Keys

REDIS_URL = "redis://127.0.0.1:6379/15"
pytestmark = pytest.mark.redis
WORKSPACE = Keys.for_api_key("sk-redis-budget-workspace")


def test_two_processes_reserving_at_once_never_pass_the_limit() -> None:
    stores = [RedisBudgetStore(redis.Redis.from_url(REDIS_URL), WORKSPACE), RedisBudgetStore(redis.Redis.from_url(REDIS_URL), WORKSPACE)]
    key = f"test:{uuid.uuid4().hex}"
    day = Charge(f"{key}:day", 50_000_000, time.time() + 3600, "plugin/day")  # 5 cents in nano-USD
    user = Charge(f"{key}:user", 30_000_000, time.time() + 3600, "user/day")
    granted: list[Hold] = []
    refused: list[Refusal] = []
    lock = threading.Lock()

    def take(store: RedisBudgetStore) -> None:
        for _ in range(40):
            result = store.reserve([day, user], 700_000)
            with lock:
                (granted if isinstance(result, Hold) else refused).append(result)  # type: ignore[arg-type]

    threads = [threading.Thread(target=take, args=(stores[n % 2],)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 30_000_000 // 700_000
    assert all(r.charge.name == "user/day" for r in refused)
    assert stores[0].spent(user.key) <= user.limit and stores[1].spent(day.key) == stores[0].spent(user.key)
    for hold in granted:
        stores[1].settle(hold, 100_000)
    assert stores[0].spent(user.key) == 100_000 * len(granted)
    ttl = redis.Redis.from_url(REDIS_URL).ttl(WORKSPACE.budget(day.key))
    assert 3600 < ttl <= 7200  # the counter goes with its period (plus an hour of margin)


def test_redis_unreachable_means_a_call_under_a_budget_is_not_sent() -> None:
    store = RedisBudgetStore(redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2), WORKSPACE)
    with pytest.raises(BudgetStoreUnavailable, match="not sent"):
        store.reserve([Charge("k", 10, 0, "plugin/day")], 1)


def test_the_reply_cache_is_shared_and_falls_back_to_the_process_while_redis_is_down() -> None:
    key = uuid.uuid4().hex
    first = RedisReplyCache(redis.Redis.from_url(REDIS_URL), LRUReplyCache(), WORKSPACE)
    second = RedisReplyCache(redis.Redis.from_url(REDIS_URL), LRUReplyCache(), WORKSPACE)
    first.put(key, {"text": "cached"}, ttl=30)
    assert second.get(key) == {"text": "cached"}
    down = RedisReplyCache(redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2), LRUReplyCache(), WORKSPACE)
    down.put(key, {"text": "local"}, ttl=30)
    assert down.get(key) == {"text": "local"} and down.warnings()
