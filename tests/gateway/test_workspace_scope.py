"""Two workspaces (two API keys, one gateway URL) in one plugin process, with and without one shared Redis
(db 15): they never share a budget counter, a cached reply, a rate-limit bucket, a 429 pause, a breaker
or a job, even where the names they ask for are the same; every key is named by `gateway.state.keys` under the
workspace's scope, and every script's keys hash to one Redis Cluster slot."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.commands.core import Script
from redis.crc import key_slot

from gateway import CallOptions, ChatRequest, GatewayClient, GatewayConfig
from gateway.call.breaker import BreakerSettings
from gateway.call.rate_limits import LimitSettings, RateLimitTimeout
from gateway.call.retry import RetryPolicy
from gateway.errors import CircuitOpenError, UpstreamUnavailableError
from gateway.metrics import InProcessMetrics
from gateway.spend.budget import BudgetExceeded, Charge, Hold, Refusal
from gateway.state.backends import Backends
from gateway.state.keys import PREFIX, Keys, digest
from gateway.state.redis_state import RedisState
from gateway.state.shared import InProcessState, SharedState
from gateway.wire.transport import MemoryTransport
from jobs.inputs import parse_prompts
from jobs.store import JobNotFound, JobStore
from tests.gateway.helpers import completion, status

REDIS_URL = "redis://127.0.0.1:6379/15"
BREAKER = BreakerSettings(failure_threshold=2, failure_rate=0.5, window_seconds=30, cooldown_seconds=30)


class Workspaces:
    """Workspaces A and B of one process: same gateway URL, their own API keys, one shared state."""

    def __init__(self, redis_url: str) -> None:
        token = uuid.uuid4().hex[:10]
        self.redis_url = redis_url
        self.base_url = f"http://gateway-{token}.test/v1"
        self.state: SharedState = (
            RedisState(redis_url, client=redis.Redis.from_url(redis_url), fallback=InProcessState(breaker_settings=BREAKER), breaker_settings=BREAKER)
            if redis_url
            else InProcessState(breaker_settings=BREAKER)
        )
        self.backends = Backends()  # one process's stores: both workspaces' clients count in them
        self.a = self.config(f"sk-workspace-a-{token}")
        self.b = self.config(f"sk-workspace-b-{token}")

    def config(self, api_key: str, **extra: str) -> GatewayConfig:
        credentials = {"api_key": api_key, "base_url": self.base_url, "redis_url": self.redis_url, "max_retries": "0", **extra}
        return GatewayConfig.from_credentials(credentials)

    def client(self, config: GatewayConfig, transport: MemoryTransport) -> GatewayClient:
        return GatewayClient(
            config, state=self.state, transport=transport, retry=RetryPolicy(max_retries=0), metrics=InProcessMetrics(), backends=self.backends
        )


@pytest.fixture(params=["in-process", "redis"])
def spaces(request: pytest.FixtureRequest) -> Workspaces:
    if request.param == "redis":
        request.applymarker(pytest.mark.redis)
    return Workspaces(REDIS_URL if request.param == "redis" else "")


def ask(temperature: float | None = 0.0) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": "the same question"}], model="deepseek-v3.2", temperature=temperature)


def answering(text: str) -> MemoryTransport:
    return MemoryTransport(handler=lambda method, path, body: completion(text))


# ----------------------------------------------------------------------------- reply cache


def test_a_cached_reply_is_never_served_to_another_workspace(spaces: Workspaces) -> None:
    a_gateway, b_gateway = answering("A's answer"), answering("B's answer")
    a, b = spaces.client(spaces.a, a_gateway), spaces.client(spaces.b, b_gateway)
    assert a.chat(ask()).text == "A's answer"
    assert a.chat(ask()).text == "A's answer" and len(a_gateway.sent) == 1  # A's repeat is a hit
    assert b.chat(ask()).text == "B's answer" and len(b_gateway.sent) == 1  # B's same request is not
    # The stores themselves: one entry name, two workspaces, two entries.
    spaces.backends.cache_for(spaces.redis_url, spaces.a.keys).put("same-entry", {"text": "A's"}, 60)
    assert spaces.backends.cache_for(spaces.redis_url, spaces.b.keys).get("same-entry") is None
    spaces.backends.cache_for(spaces.redis_url, spaces.b.keys).put("same-entry", {"text": "B's"}, 60)
    assert spaces.backends.cache_for(spaces.redis_url, spaces.a.keys).get("same-entry") == {"text": "A's"}


# ----------------------------------------------------------------------------- budgets


def test_a_workspace_spending_its_budget_leaves_another_workspaces_budget_whole(spaces: Workspaces) -> None:
    budgets = {"budgets": "plugin: {day: 0.0001}"}
    a_config, b_config = spaces.config(spaces.a.api_key, **budgets), spaces.config(spaces.b.api_key, **budgets)
    a, b = spaces.client(a_config, answering("ok")), spaces.client(b_config, answering("ok"))
    request = ChatRequest(messages=[{"role": "user", "content": "x"}], model="deepseek-v3.2", max_tokens=40)
    sent = 0
    with pytest.raises(BudgetExceeded):
        for _ in range(1000):
            a.chat(request, CallOptions(budget=a_config.budgets, cache="off"))
            sent += 1
    assert sent >= 1  # A spent its day's budget on real calls
    assert b.chat(request, CallOptions(budget=b_config.budgets, cache="off")).text == "ok"  # B's is whole
    # The stores themselves: one counter name, two workspaces, two counters.
    charge = Charge(f"same-counter-{uuid.uuid4().hex}", 1000, time.time() + 3600, "plugin/day")
    assert isinstance(spaces.backends.budget_store_for(spaces.redis_url, spaces.a.keys).reserve([charge], 1000), Hold)
    assert isinstance(spaces.backends.budget_store_for(spaces.redis_url, spaces.a.keys).reserve([charge], 1), Refusal)  # A's is spent
    assert isinstance(spaces.backends.budget_store_for(spaces.redis_url, spaces.b.keys).reserve([charge], 1000), Hold)  # B's is whole


# ----------------------------------------------------------------------------- gateway state


def test_one_workspaces_failures_never_open_another_workspaces_breaker(spaces: Workspaces) -> None:
    failing = MemoryTransport(handler=lambda method, path, body: status(503))
    a, b = spaces.client(spaces.a, failing), spaces.client(spaces.b, answering("B is fine"))
    for _ in range(2):
        with pytest.raises(UpstreamUnavailableError):
            a.chat(ask(None))
    with pytest.raises(CircuitOpenError):
        a.chat(ask(None))  # A's breaker is open
    assert b.chat(ask(None)).text == "B is fine"  # same gateway URL and model, B's breaker is closed
    assert a.breaker_for("deepseek-v3.2").state == "open" and b.breaker_for("deepseek-v3.2").state == "closed"


def test_a_429_pause_and_a_drained_bucket_hold_only_their_own_workspace(spaces: Workspaces) -> None:
    # Even under the same gateway URL and the same key digest, the workspaces' limiters are apart.
    a = spaces.state.rate_limiter(spaces.base_url, "same-digest", LimitSettings(), keys=spaces.a.keys)
    b = spaces.state.rate_limiter(spaces.base_url, "same-digest", LimitSettings(), keys=spaces.b.keys)
    a.pause(30.0)
    with pytest.raises(RateLimitTimeout):
        a.reserve(1, time.monotonic() + 0.2)
    started = time.monotonic()
    b.reserve(1, time.monotonic() + 0.2)
    assert time.monotonic() - started < 0.1
    settings = LimitSettings(rpm=60)  # a burst of one a second
    a_bucket = spaces.state.rate_limiter(spaces.base_url, "other-digest", settings, keys=spaces.a.keys)
    b_bucket = spaces.state.rate_limiter(spaces.base_url, "other-digest", settings, keys=spaces.b.keys)
    a_bucket.reserve(1, None)
    with pytest.raises(RateLimitTimeout):
        a_bucket.reserve(1, time.monotonic() + 0.1)
    b_bucket.reserve(1, time.monotonic() + 0.1)


# ----------------------------------------------------------------------------- jobs


@pytest.mark.redis
def test_a_job_exists_only_in_its_workspace() -> None:
    spaces = Workspaces(REDIS_URL)
    connection = redis.Redis.from_url(REDIS_URL)
    a, b = JobStore(connection, spaces.a.keys), JobStore(connection, spaces.b.keys)
    items, _ = parse_prompts(json.dumps(["one", "two"]))
    job_id = a.create(items, base_url=spaces.base_url, key_digest=spaces.a.key_digest, settings={"model": "default"}, mode="workers", owner_app="-")
    assert job_id in a.open_jobs() and job_id not in b.open_jobs()
    for attempt in (b.meta, b.cancel):
        with pytest.raises(JobNotFound):
            attempt(job_id)
    assert b.status(job_id) is None and b.items(job_id, 0, 10) == [] and b.results(job_id, [0, 1]) == [None, None]
    assert a.meta(job_id)["status"] == "running" and a.meta(job_id)["owner_scope"] == spaces.a.keys.scope
    assert a.cancel(job_id) == "cancelled"


# ----------------------------------------------------------------------------- key names and slots


@pytest.fixture
def script_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """The keys of every Lua script call made while the test runs."""
    calls: list[list[str]] = []
    original = Script.__call__

    def recorded(self: Script, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        calls.append([k.decode() if isinstance(k, bytes) else str(k) for k in keys or []])
        return original(self, keys=keys, args=args, client=client)

    monkeypatch.setattr(Script, "__call__", recorded)
    yield calls


@pytest.mark.redis
def test_every_script_touches_one_workspaces_keys_in_one_cluster_slot(script_keys: list[list[str]]) -> None:
    spaces = Workspaces(REDIS_URL)
    config = spaces.config(spaces.a.api_key, budgets="plugin: {day: 5}\napp: {day: 5}\nuser: {hour: 5}")
    gateway = spaces.client(config, answering("ok"))
    options = CallOptions(budget=config.budgets, limits=LimitSettings(rpm=6000, tpm=10_000_000), cache="on")
    gateway.chat(ask(), options)
    failing = spaces.client(spaces.a, MemoryTransport(handler=lambda method, path, body: status(503)))
    with pytest.raises(UpstreamUnavailableError):
        failing.chat(ask(None))
    gateway.chat(ask(None))  # no limits: the breaker-and-pause read
    store = JobStore(redis.Redis.from_url(REDIS_URL), spaces.a.keys)
    items, _ = parse_prompts(json.dumps(["one", "two"]))
    job_id = store.create(
        items, base_url=spaces.base_url, key_digest=spaces.a.key_digest, settings={"model": "default"}, mode="workers", owner_app="-"
    )
    claimed = store.claim_new(job_id, "worker", 1)
    store.record_send(job_id, claimed[0][1])
    store.finish_many(job_id, [(claimed[0][0], claimed[0][1], {"status": "ok", "cost_usd": 0.1, "latency_ms": 5, "attempts": 1})])
    store.cancel(job_id)
    scope = spaces.a.keys.scope
    assert len(script_keys) >= 8
    for keys in script_keys:
        assert keys, "every script names its keys"
        assert all(k.startswith(f"{PREFIX}:{{{scope}:") for k in keys), keys  # the workspace's, tagged
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys  # one slot: runs on a Redis Cluster
    gateway_tag = f"{PREFIX}:{{{scope}:g:{digest(spaces.base_url)}}}:"
    touched = {k for keys in script_keys for k in keys}
    assert any(k.startswith(gateway_tag) for k in touched)  # breakers, buckets, pause under the gateway's tag
    assert any(k.startswith(f"{PREFIX}:{{{scope}:budget}}:") for k in touched)
    assert spaces.a.keys.jobs_open() in touched
    # Nothing of this workspace's gateway was written under another name (the old unscoped ones included).
    connection = redis.Redis.from_url(REDIS_URL)
    named_for_the_gateway = [k.decode() for k in connection.scan_iter(match=f"*{digest(spaces.base_url)}*", count=1000)]
    assert named_for_the_gateway and all(k.startswith(f"{PREFIX}:{{{scope}:") for k in named_for_the_gateway), named_for_the_gateway
    cached = [k.decode() for k in connection.scan_iter(match=f"*{scope}*cache*", count=1000)]
    assert cached and all(k.startswith(f"{PREFIX}:{scope}:cache:") for k in cached)


def test_a_workspace_scope_names_neither_the_key_nor_its_digest() -> None:
    config = GatewayConfig.from_credentials({"api_key": "sk-scope-secret-0123456789"})
    assert config.keys == Keys.for_api_key("sk-scope-secret-0123456789")
    assert "sk-scope-secret" not in config.keys.scope and config.key_digest not in config.keys.scope
    assert GatewayConfig.from_credentials({"api_key": "sk-scope-secret-0123456789", "base_url": "http://other.test"}).keys == config.keys
    assert GatewayConfig.from_credentials({"api_key": "sk-scope-other-0123456789"}).keys != config.keys
