"""Several plugin processes sharing state through a real Redis: one RPM budget, one breaker, one
approval store with compare-and-set; and what happens when Redis goes away."""

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.plugin_process import PluginProcess
from simulator.harness import SimulatorProcess
from tests.private_redis import PrivateRedis

pytestmark = [pytest.mark.redis, pytest.mark.runtime]
REDIS_URL = "redis://127.0.0.1:6379/14"


@pytest.fixture(scope="module")
def two_plugins() -> Iterator[tuple[PluginProcess, PluginProcess]]:
    with PluginProcess() as first, PluginProcess() as second:
        yield first, second


@pytest.fixture
def own_sim() -> Iterator[SimulatorProcess]:
    """A gateway of the test's own: Redis keys are per base URL, so no test sees another's buckets."""
    with SimulatorProcess() as sim:
        yield sim


def in_parallel(*calls: Any) -> list[Any]:
    """Runs the calls at the same moment; a failure in any of them fails the test."""
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a parallel call did not finish"
    if errors:
        raise errors[0]
    return results


def batch(plugin: PluginProcess, creds: dict[str, Any], prefix: str, n: int, **params: Any) -> dict[str, Any]:
    prompts = json.dumps([f"{prefix} {i}" for i in range(n)])
    outcome = plugin.run_tool("batch_chat", {"prompts": prompts, "concurrency": 20, **params}, creds, timeout=300)
    assert outcome.ok, outcome.error
    return outcome.variables


def test_two_processes_share_one_rpm_limit_through_redis(two_plugins, own_sim: SimulatorProcess) -> None:
    own_sim.configure(rpm_limit=1200)  # 20 per second at the gateway
    creds = {"api_key": own_sim.api_key, "base_url": own_sim.base_url, "redis_url": REDIS_URL, "max_retries": "0"}
    first, second = two_plugins
    outs = in_parallel(
        lambda: batch(first, creds, "one", 60, rpm_limit=1200),
        lambda: batch(second, creds, "two", 60, rpm_limit=1200),
    )
    stats = own_sim.stats()
    assert stats["rate_limited"] == 0  # together they never exceeded the gateway's limit
    assert sum(out["succeeded"] for out in outs) == 120
    assert all(out["warnings"] == [] for out in outs)


def test_without_redis_two_processes_each_spend_the_whole_budget(two_plugins, own_sim: SimulatorProcess) -> None:
    """The control: the same run with in-process buckets overruns the gateway's limit."""
    own_sim.configure(rpm_limit=1200)
    creds = {"api_key": own_sim.api_key, "base_url": own_sim.base_url, "max_retries": "0"}
    first, second = two_plugins
    in_parallel(lambda: batch(first, creds, "one", 60, rpm_limit=1200), lambda: batch(second, creds, "two", 60, rpm_limit=1200))
    assert own_sim.stats()["rate_limited"] > 0


def test_a_breaker_opened_by_one_process_fails_fast_in_the_other(two_plugins, own_sim: SimulatorProcess) -> None:
    creds = {"api_key": own_sim.api_key, "base_url": own_sim.base_url, "redis_url": REDIS_URL, "max_retries": "0"}
    first, second = two_plugins
    batch(first, creds, "down [[sim: 503x9]]", 8, concurrency=1)
    sent_before = own_sim.stats()["requests_by_path"]["/v1/chat/completions"]
    outcome = second.run_tool("chat", {"prompt": "from the other process"}, creds)
    assert not outcome.ok and "circuit open" in outcome.error_message
    assert own_sim.stats()["requests_by_path"]["/v1/chat/completions"] == sent_before


def route_and_save(plugin: PluginProcess, creds: dict[str, Any], request_id: str) -> dict[str, Any]:
    params = {"request_id": request_id, "content": "New laptop", "amount": 1800, "request_type": "purchase",
              "department": "design", "requester_id": "amy", "deadline_hours": 48, "model": "rules_only"}
    outcome = plugin.run_tool("approval_route", params, creds)
    assert outcome.ok, outcome.error
    return outcome.variables


def test_two_concurrent_approvers_exactly_one_wins(two_plugins, own_sim: SimulatorProcess) -> None:
    creds = {"api_key": own_sim.api_key, "base_url": own_sim.base_url, "redis_url": REDIS_URL}
    first, second = two_plugins
    request_id = f"RACE-{uuid.uuid4().hex[:8]}"
    routed = route_and_save(first, creds, request_id)
    assert routed["store"] == "redis" and routed["version"] == 1 and routed["approver_level"] == "director"

    def approve(plugin: PluginProcess, actor: str) -> dict[str, Any]:
        # Only the id, the expected version, the event and the actor come from the caller: the store has the rest.
        params = {"request_id": request_id, "expected_version": 1, "event": "approve", "actor_id": actor, "actor_level": "director"}
        return plugin.run_tool("approval_transition", params, creds).variables

    results = in_parallel(lambda: approve(first, "bob"), lambda: approve(second, "cy"))
    assert sorted(r["accepted"] for r in results) == [False, True]
    loser = next(r for r in results if not r["accepted"])
    assert loser["code"] == "stale_version" and loser["state"] == "approved" and loser["version"] == 2
    assert all(r["store"] == "redis" for r in results)


def test_a_retried_transition_with_the_same_idempotency_key_applies_once(two_plugins, own_sim: SimulatorProcess) -> None:
    creds = {"api_key": own_sim.api_key, "base_url": own_sim.base_url, "redis_url": REDIS_URL}
    first, second = two_plugins
    request_id = f"IDEM-{uuid.uuid4().hex[:8]}"
    route_and_save(first, creds, request_id)
    params = {"request_id": request_id, "event": "claim", "actor_id": "bob", "actor_level": "director", "idempotency_key": "k-1"}
    once = first.run_tool("approval_transition", params, creds).variables
    again = second.run_tool("approval_transition", params, creds).variables
    assert once == again and once["version"] == 2 and once["state"] == "under_review"


def test_a_second_route_of_the_same_request_id_is_refused(two_plugins, own_sim: SimulatorProcess) -> None:
    creds = {"api_key": own_sim.api_key, "base_url": own_sim.base_url, "redis_url": REDIS_URL}
    request_id = f"DUP-{uuid.uuid4().hex[:8]}"
    route_and_save(two_plugins[0], creds, request_id)
    outcome = two_plugins[1].run_tool("approval_route", {"request_id": request_id, "content": "again", "amount": 5,
                                                         "request_type": "purchase", "requester_id": "amy"}, creds)
    assert not outcome.ok and "already routed" in outcome.error_message


def test_redis_stopped_mid_run_limits_fall_back_with_a_warning_and_the_store_fails_closed(
    own_sim: SimulatorProcess, private_redis: PrivateRedis
) -> None:
    server = private_redis
    creds = {"api_key": own_sim.api_key, "base_url": own_sim.base_url, "redis_url": server.url}
    with PluginProcess() as plugin:
        ok, message = plugin.validate(creds)
        assert ok, message
        request_id = f"STOP-{uuid.uuid4().hex[:8]}"
        route_and_save(plugin, creds, request_id)
        before = batch(plugin, creds, "before", 5, rpm_limit=6000)
        assert before["succeeded"] == 5 and before["warnings"] == []
        server.stop()
        after = batch(plugin, creds, "after", 5, rpm_limit=6000)
        assert after["succeeded"] == 5
        assert any("Redis" in w and "per process" in w for w in after["warnings"])
        chat = plugin.run_tool("chat", {"prompt": "still answering"}, creds)
        assert chat.ok and any("Redis" in w for w in chat.variables["warnings"])
        transition = plugin.run_tool("approval_transition", {"request_id": request_id, "event": "claim", "actor_id": "bob",
                                                             "actor_level": "director"}, creds)
        assert not transition.ok and "fails closed" in transition.error_message
        assert server.password not in transition.error_message
        assert server.password not in plugin.stderr_text()


def test_wrong_redis_password_or_address_is_a_clear_validation_message(
    own_sim: SimulatorProcess, plugin: PluginProcess, private_redis: PrivateRedis
) -> None:
    server = private_redis
    base = {"api_key": own_sim.api_key, "base_url": own_sim.base_url}
    ok, message = plugin.validate({**base, "redis_url": f"redis://:not-the-password@127.0.0.1:{server.port}/0"})
    assert not ok and message.startswith("redis_url:") and "password" in message
    assert "not-the-password" not in message and server.password not in message
    ok, message = plugin.validate({**base, "redis_url": "redis://127.0.0.1:1/0"})
    assert not ok and "127.0.0.1:1" in message
    ok, message = plugin.validate({**base, "redis_url": server.url})
    assert ok, message
