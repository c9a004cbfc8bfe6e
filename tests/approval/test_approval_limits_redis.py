"""The auto-approval limits script in the real Redis on 127.0.0.1:6379 (db 15, keys of a workspace scope of
the test's own): all limits or none, never past a limit however many threads and processes take at once,
the same request counted once, counters that expire with their period, and Redis down means no take."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis

from approval.limits import (
    REFUSED,
    REPLAYED,
    TAKEN,
    AutoApprovalGate,
    LimitsUnavailable,
    RedisLimitStore,
    counters_for,
    exceeded,
    window,
)
from approval.policy import PeriodLimit
from gateway.state.keys import Keys

REDIS_URL = "redis://127.0.0.1:6379/15"
pytestmark = pytest.mark.redis

LIMITS = (
    PeriodLimit("per_requester", "day", 3, Decimal(800)),
    PeriodLimit("per_requester", "month", 20, Decimal(3000)),
    PeriodLimit("total", "day", 200, Decimal(20000)),
)


@pytest.fixture
def scope() -> Iterator[str]:
    """A workspace scope of the test's own; its keys are deleted afterwards (they would expire anyway)."""
    name = f"t{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{{{name}:*", count=1000))
    if keys:
        client.delete(*keys)


def store(scope: str) -> RedisLimitStore:
    return RedisLimitStore(redis.Redis.from_url(REDIS_URL), Keys(scope))


def take(scope: str, requester: str, amount: int, marker: str | None = None, limits: tuple[PeriodLimit, ...] = LIMITS):
    counters = counters_for(limits, requester, datetime.now(UTC))
    return store(scope).take(marker or uuid.uuid4().hex, counters, amount, max(c.expires_at for c in counters)), counters


def test_takes_until_a_limit_then_refuses_without_counting(scope: str) -> None:
    results = [take(scope, "amy", 10_000)[0] for _ in range(5)]  # 100.00 each
    assert [r.status for r in results] == [TAKEN, TAKEN, TAKEN, REFUSED, REFUSED]
    refused, counters = take(scope, "amy", 10_000)
    assert refused.usage[0] == (3, 30_000) and exceeded(counters, refused.usage, 10_000) == ["per_requester.day.count"]
    assert take(scope, "bea", 10_000)[0].status == TAKEN
    total = take(scope, "cy", 0)[0].usage[2]
    assert total == (4, 40_000)  # amy's three and bea's one: refusals took nothing


def test_an_amount_over_one_limit_takes_from_none(scope: str) -> None:
    assert take(scope, "amy", 70_000)[0].status == TAKEN
    over, counters = take(scope, "amy", 10_001)  # 700.00 + 100.01 > 800.00
    assert over.status == REFUSED and exceeded(counters, over.usage, 10_001) == ["per_requester.day.amount"]
    after = take(scope, "amy", 10_000)[0]  # exactly 800.00
    assert after.status == TAKEN and after.usage == ((1, 70_000), (1, 70_000), (1, 70_000))


def test_the_same_request_is_counted_once(scope: str) -> None:
    first = take(scope, "amy", 10_000, marker="digest-1")[0]
    again = [take(scope, "amy", 10_000, marker="digest-1")[0] for _ in range(5)]
    assert first.status == TAKEN and {r.status for r in again} == {REPLAYED}
    assert again[-1].usage[0] == (1, 10_000)


def test_keys_share_one_hash_tag_expire_with_their_period_and_name_nobody(scope: str) -> None:
    take(scope, "amy.secret-name@example.com", 10_000, marker="m-1")
    client = redis.Redis.from_url(REDIS_URL)
    names = sorted(key.decode() for key in client.scan_iter(match=f"*{scope}*", count=1000))
    tag = Keys(scope).approval_limits("x").split("}", 1)[0] + "}"
    assert len(names) == 4 and all(name.startswith(tag) for name in names)
    assert not any("amy" in name or "example" in name for name in names)
    now = time.time()
    for name in names:
        expires = client.expiretime(name)
        if ":total:" in name or ":req:d" in name:
            assert now < expires <= window("day", datetime.now(UTC))[1].timestamp() + 3600 + 1
        else:  # the month counter and the marker (kept as long as the longest period)
            assert expires == int(window("month", datetime.now(UTC))[1].timestamp()) + 3600
        assert client.type(name) in (b"hash", b"string")


def _take_many(scope: str, tries: int) -> list[str]:
    limits = (PeriodLimit("per_requester", "day", 7, None), PeriodLimit("total", "day", 12, Decimal(1000)))
    return [take(scope, f"r{n % 2}", 5_000, limits=limits)[0].status for n in range(tries)]


def _take_in_process(scope: str, tries: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(_take_many(scope, tries))


def test_threads_and_processes_taking_at_once_never_pass_a_limit(scope: str) -> None:
    """Per requester 7 a day, 12 and 1000.00 in total: 6 threads and 3 processes, 2 requesters, 150 tries."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_take_in_process, args=(scope, 10, queue)) for _ in range(3)]
    for process in processes:
        process.start()
    statuses: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        results = _take_many(scope, 20)
        with lock:
            statuses.extend(results)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _ in processes:
        statuses.extend(queue.get(timeout=60))
    for process in processes:
        process.join(timeout=60)
    assert len(statuses) == 150
    assert statuses.count(TAKEN) == 12  # the total: exactly the limit, never one more
    client = redis.Redis.from_url(REDIS_URL)
    label = window("day", datetime.now(UTC))[0]
    total = client.hgetall(Keys(scope).approval_limits(f"total:{label}"))
    assert (int(total[b"count"]), int(total[b"amount"])) == (12, 60_000)


def test_redis_unreachable_means_no_take_and_the_password_is_never_shown() -> None:
    broken = RedisLimitStore(redis.Redis.from_url("redis://:hunter2-pass@127.0.0.1:1/0", socket_connect_timeout=0.2),
                             Keys("t-down"))
    counters = counters_for(LIMITS, "amy", datetime.now(UTC))
    with pytest.raises(LimitsUnavailable) as caught:
        broken.take("m", counters, 1, counters[0].expires_at)
    assert "hunter2" not in str(caught.value) and str(caught.value)


def test_a_gate_with_redis_url_counts_in_redis_shared_by_every_gate() -> None:
    api_key = f"sk-{uuid.uuid4().hex}"
    one = AutoApprovalGate.for_workspace(api_key, REDIS_URL, Keys.for_api_key(api_key))
    assert one.store.name == "redis"
    limits = (PeriodLimit("total", "day", 1, None),)
    counters = counters_for(limits, "amy", datetime.now(UTC))
    assert one.store.take("a", counters, 1, counters[0].expires_at).status == TAKEN
    again = AutoApprovalGate(RedisLimitStore(redis.Redis.from_url(REDIS_URL), Keys(one.scope)), b"", one.scope)
    assert again.store.take("b", counters, 1, counters[0].expires_at).status == REFUSED
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*client.scan_iter(match=f"*{{{one.scope}:*", count=1000))
