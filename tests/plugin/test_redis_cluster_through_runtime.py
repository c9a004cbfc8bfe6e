"""Everything that uses Redis, through the plugin runtime (python -m main), against the local 3-node Redis
Cluster (devtools/redis_cluster.sh): credential validation, approval routing, chat with rate limits, breaker,
reply cache and budgets, and a batch job. Each test has a gateway of its own, so its keys are its own."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from devtools.plugin_process import PluginProcess
from simulator.harness import SimulatorProcess
from tests.conftest import REDIS_CLUSTER_SCRIPT
from tests.private_redis import free_port

pytestmark = [pytest.mark.redis_cluster, pytest.mark.runtime]


@pytest.fixture(scope="module")
def plugin() -> Iterator[PluginProcess]:
    with PluginProcess() as process:
        yield process


@pytest.fixture
def own_sim() -> Iterator[SimulatorProcess]:
    """A gateway (and so an API key, a workspace scope) of the test's own: no test sees another's keys."""
    with SimulatorProcess() as sim:
        yield sim


@pytest.fixture(scope="module")
def cluster(redis_cluster_url: str) -> RedisCluster:
    return RedisCluster(host="127.0.0.1", port=7101)


def creds(sim: SimulatorProcess, url: str, **extra: Any) -> dict[str, Any]:
    return {"api_key": sim.api_key, "base_url": sim.base_url, "default_model": "deepseek-v3.2", "max_retries": "0", "redis_url": url, **extra}


def run(plugin: PluginProcess, tool: str, params: dict[str, Any], credentials: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    outcome = plugin.run_tool(tool, params, credentials, timeout=60, **kwargs)
    assert outcome.ok, outcome.error
    return outcome.variables


def nodes_holding(cluster: RedisCluster, pattern: str) -> dict[str, list[bytes]]:
    """Which primary holds which keys matching `pattern` (SCAN on every primary)."""
    out: dict[str, list[bytes]] = {}
    for node in cluster.get_primaries():
        keys = list(cluster.get_redis_connection(node).scan_iter(match=pattern, count=1000))
        if keys:
            out[node.name] = keys
    return out


# ----------------------------------------------------------------------------- credential validation


def test_a_cluster_url_is_accepted_at_validation(plugin: PluginProcess, own_sim: SimulatorProcess, redis_cluster_url: str) -> None:
    ok, message = plugin.validate(creds(own_sim, redis_cluster_url))
    assert ok, message
    ok, message = plugin.validate(creds(own_sim, "redis+cluster://127.0.0.1:7102"))  # one seed is enough
    assert ok, message


def test_a_redis_url_at_a_cluster_node_is_told_to_use_the_cluster_scheme(
    plugin: PluginProcess, own_sim: SimulatorProcess, redis_cluster_url: str
) -> None:
    ok, message = plugin.validate(creds(own_sim, "redis://127.0.0.1:7101/0"))
    assert not ok
    assert message.startswith("redis_url:") and "is a node of a Redis Cluster" in message
    assert "use redis+cluster://127.0.0.1:7101" in message


def test_a_cluster_url_with_a_database_other_than_0_is_refused(
    plugin: PluginProcess, own_sim: SimulatorProcess, redis_cluster_url: str
) -> None:
    for url in (redis_cluster_url + "/3", redis_cluster_url + "/?db=2"):
        ok, message = plugin.validate(creds(own_sim, url))
        assert not ok and message.startswith("redis_url")
        assert "database other than 0" in message and "/0 or nothing" in message, message
    ok, message = plugin.validate(creds(own_sim, redis_cluster_url + "/0"))
    assert ok, message


def test_a_cluster_url_at_a_single_redis_or_at_nothing_says_what_to_fix(
    plugin: PluginProcess, own_sim: SimulatorProcess, redis_cluster_url: str
) -> None:
    ok, message = plugin.validate(creds(own_sim, "redis+cluster://127.0.0.1:6379"))
    assert not ok and "is not a node of a Redis Cluster" in message and "redis://127.0.0.1:6379/0" in message
    ok, message = plugin.validate(creds(own_sim, "redis+cluster://:secret-pass-x@127.0.0.1:1,127.0.0.1:2"))
    assert not ok and "cannot reach any node of the Redis Cluster at 127.0.0.1:1,127.0.0.1:2" in message
    assert "secret-pass-x" not in message and "internal error" not in message


def test_a_tool_run_with_a_redis_url_at_a_cluster_node_says_what_to_fix(
    plugin: PluginProcess, own_sim: SimulatorProcess, redis_cluster_url: str
) -> None:
    """Credentials saved before the cluster (validation is not re-run): the tool's message says what to fix."""
    request_id = f"NODE-{uuid.uuid4().hex[:8]}"
    outcomes = [
        plugin.run_tool("approval_route", route_params(f"{request_id}-{n}"), creds(own_sim, "redis://127.0.0.1:7101/0"))
        for n in range(6)  # some ids hash to another node's slots
    ]
    refused = [o for o in outcomes if not o.ok]
    assert refused
    for outcome in refused:
        assert "internal error" not in outcome.error_message
        assert "redis+cluster://127.0.0.1:7101" in outcome.error_message, outcome.error_message
    # chat and batch_submit: a workspace's gateway state and jobs are each in one slot, on one of the three
    # nodes; through the two other nodes' plain URLs both fail, saying which scheme to use.
    failures = []
    for port in (7101, 7102, 7103):
        credentials = creds(own_sim, f"redis://127.0.0.1:{port}/0")
        for outcome in (plugin.run_tool("chat", {"prompt": "hello"}, credentials),
                        plugin.run_tool("batch_submit", {"prompts": json.dumps(["a", "b"])}, credentials)):
            if not outcome.ok:
                failures.append(outcome.error_message)
                assert f"use redis+cluster://127.0.0.1:{port}" in outcome.error_message, outcome.error_message
                assert "internal error" not in outcome.error_message
    assert len(failures) >= 4, failures


# ----------------------------------------------------------------------------- approval


def route_params(request_id: str, **extra: Any) -> dict[str, Any]:
    return {"request_id": request_id, "content": "New laptop", "amount": 1800, "request_type": "purchase",
            "department": "design", "requester_id": "amy", "deadline_hours": 48, "model": "rules_only", **extra}


def test_approval_routing_and_transitions_on_the_cluster(
    plugin: PluginProcess, own_sim: SimulatorProcess, redis_cluster_url: str, cluster: RedisCluster
) -> None:
    credentials = creds(own_sim, redis_cluster_url)
    run_id = uuid.uuid4().hex[:8]
    request_ids = [f"CL-{run_id}-{n}" for n in range(8)]
    for request_id in request_ids:
        routed = run(plugin, "approval_route", route_params(request_id), credentials)
        assert routed["store"] == "redis" and routed["version"] == 1 and routed["approver_level"] == "director"
    again = plugin.run_tool("approval_route", route_params(request_ids[0]), credentials)
    assert not again.ok and "already routed" in again.error_message
    request_id = request_ids[0]
    claim = {"request_id": request_id, "event": "claim", "actor_id": "bob", "actor_level": "director", "idempotency_key": "k-1"}
    once = run(plugin, "approval_transition", claim, credentials)
    assert once["version"] == 2 and once["state"] == "under_review"
    assert run(plugin, "approval_transition", claim, credentials) == once  # same idempotency key: applied once
    stale = run(plugin, "approval_transition", {**claim, "event": "approve", "idempotency_key": "k-2", "expected_version": 1}, credentials)
    assert not stale["accepted"] and stale["code"] == "stale_version"
    approved = run(plugin, "approval_transition", {**claim, "event": "approve", "idempotency_key": "k-3", "expected_version": 2}, credentials)
    assert approved["accepted"] and approved["state"] == "approved"
    status = run(plugin, "approval_status", {"request_id": request_id}, credentials)
    assert status["state"] == "approved" and status["version"] == 3
    # The records really are spread over the cluster: several primaries hold some.
    held = nodes_holding(cluster, f"*CL-{run_id}-*")
    assert len(held) >= 2, held


# ----------------------------------------------------------------------------- chat


def test_chat_shares_rate_limits_breaker_cache_and_budgets_through_the_cluster(
    plugin: PluginProcess, own_sim: SimulatorProcess, redis_cluster_url: str
) -> None:
    credentials = creds(own_sim, redis_cluster_url, budgets="plugin: {day: 1}")
    # Reply cache: the second identical request at temperature 0 is answered from the cluster.
    prompt = f"cache me {uuid.uuid4().hex[:8]}"
    ask = {"prompt": prompt, "temperature": 0, "rpm_limit": 600, "max_tokens": 200}
    first = run(plugin, "chat", ask, credentials)
    second = run(plugin, "chat", ask, credentials)
    assert (first["cache"], second["cache"]) == ("miss", "hit")
    assert first["warnings"] == [] and second["warnings"] == []  # nothing fell back to per-process state
    assert first["budget_remaining_usd"] < 1
    # A second process sees the same cache (it is in the cluster, not in the process).
    with PluginProcess() as other:
        assert run(other, "chat", ask, credentials)["cache"] == "hit"
        # Breaker: failures in this process open it for the other one.
        for n in range(8):
            plugin.run_tool("chat", {"prompt": f"down {n} [[sim: 503x9]]"}, credentials)
        sent = own_sim.stats()["requests_by_path"]["/v1/chat/completions"]
        outcome = other.run_tool("chat", {"prompt": "from the other process"}, credentials)
        assert not outcome.ok and "circuit open" in outcome.error_message
        assert own_sim.stats()["requests_by_path"]["/v1/chat/completions"] == sent


def test_a_budget_is_shared_through_the_cluster(plugin: PluginProcess, own_sim: SimulatorProcess, redis_cluster_url: str) -> None:
    credentials = creds(own_sim, redis_cluster_url, budgets="plugin: {day: 0.00005}")
    params = {"prompt": "hello", "model": "deepseek-v3.2", "max_tokens": 100}  # worst case ~4.2e-5 USD a call
    with PluginProcess() as other:
        outcomes = [run(plugin if n % 2 else other, "chat", params, credentials) for n in range(6)]
    ran = [o for o in outcomes if not o["budget_exceeded"]]
    refused = [o for o in outcomes if o["budget_exceeded"]]
    assert ran and refused, outcomes
    assert all(o["budget"] == "plugin/day" and o["attempts"] == 0 for o in refused)
    # Both processes counted against one budget: what the refusal says was spent is what both spent.
    assert refused[-1]["budget_spent_usd"] == pytest.approx(sum(o["cost_usd"] for o in ran))
    assert not outcomes[0]["budget_exceeded"] and not outcomes[1]["budget_exceeded"]  # one call of each process ran
    assert all(o["warnings"] == [] for o in ran)
    assert not any("Redis" in w for o in outcomes for w in o["warnings"])  # nothing fell back to per-process


def test_rate_limit_shared_by_two_processes_through_the_cluster(own_sim: SimulatorProcess, plugin: PluginProcess, redis_cluster_url: str) -> None:
    own_sim.configure(rpm_limit=1200)  # 20 per second at the gateway
    credentials = creds(own_sim, redis_cluster_url)
    prompts = json.dumps([f"rl {i}" for i in range(40)])
    with PluginProcess() as other:
        running = [p.invoke_tool("batch_chat", {"prompts": prompts, "concurrency": 20, "rpm_limit": 1200}, credentials, timeout=120)
                   for p in (plugin, other)]
        outs = [r.outcome() for r in running]
    assert all(o.ok for o in outs), [o.error for o in outs]
    assert own_sim.stats()["rate_limited"] == 0
    assert sum(o.variables["succeeded"] for o in outs) == 80
    assert all(o.variables["warnings"] == [] for o in outs)


# ----------------------------------------------------------------------------- jobs


def test_a_batch_job_runs_on_the_cluster(plugin: PluginProcess, own_sim: SimulatorProcess, redis_cluster_url: str) -> None:
    credentials = creds(own_sim, redis_cluster_url)
    prompts = [f"job item {i}" for i in range(25)]
    submitted = run(plugin, "batch_submit", {"prompts": json.dumps(prompts)}, credentials)
    job_id = submitted["job_id"]
    end = time.monotonic() + 40
    while True:
        status = run(plugin, "batch_status", {"job_id": job_id}, credentials)
        if status["finished"]:
            break
        assert time.monotonic() < end, status
        time.sleep(0.3)
    page = run(plugin, "batch_results", {"job_id": job_id, "offset": 0, "limit": 1000, "files": "none"}, credentials)
    results = page["results"]
    assert [r["status"] for r in results] == ["ok"] * len(prompts)
    assert len(results) == len(prompts)
    cancel = plugin.run_tool("batch_cancel", {"job_id": job_id}, credentials)
    assert cancel.ok or "finished" in cancel.error_message


def test_redis_errors_of_a_cluster_never_read_internal_error(plugin: PluginProcess, own_sim: SimulatorProcess) -> None:
    """A cluster nobody answers on: the tools say which nodes they could not reach, nothing else."""
    credentials = creds(own_sim, "redis+cluster://127.0.0.1:1")
    route = plugin.run_tool("approval_route", route_params(f"DOWN-{uuid.uuid4().hex[:8]}"), credentials)
    assert not route.ok and "cannot reach any node of the Redis Cluster at 127.0.0.1:1" in route.error_message
    chat = plugin.run_tool("chat", {"prompt": "still answering"}, credentials)
    assert chat.ok and any("Redis" in w for w in chat.variables["warnings"]), chat.variables
    submit = plugin.run_tool("batch_submit", {"prompts": json.dumps(["a"])}, credentials)
    assert not submit.ok and "internal error" not in submit.error_message and "127.0.0.1:1" in submit.error_message


def test_plain_redis_client_cannot_see_keys_on_other_nodes_which_is_why_the_scheme_exists(cluster: RedisCluster) -> None:
    """The premise: a plain client at one node gets MOVED for a key another node holds."""
    node = redis.Redis(host="127.0.0.1", port=7101)
    with pytest.raises(redis.exceptions.MovedError):
        for n in range(20):
            node.get(f"premise-{n}")


# ----------------------------------------------------------------------------- metrics


METRICS_TOKEN = "metrics-token-cluster-0123456789"


def scraped_requests(plugin: PluginProcess, settings: dict[str, Any]) -> tuple[float, str]:
    from prometheus_client.parser import text_string_to_metric_families

    response = plugin.invoke_endpoint("GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, settings=settings)
    assert response.status == 200, response.text
    requests = 0.0
    scope = ""
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "holysheep_requests_total":
                requests += sample.value
            if sample.name == "holysheep_metrics_scope" and sample.value == 1:
                scope = sample.labels.get("scope", "")
    return requests, scope


def test_metrics_of_two_processes_add_up_in_the_cluster(plugin: PluginProcess, own_sim: SimulatorProcess, redis_cluster_url: str) -> None:
    credentials = creds(own_sim, redis_cluster_url)
    settings = {"metrics_token": METRICS_TOKEN, "redis_url": redis_cluster_url, "api_key": own_sim.api_key, "base_url": own_sim.base_url}
    before, scope = scraped_requests(plugin, settings)
    assert scope == "redis"
    with PluginProcess() as other:
        outcomes = [plugin.run_tool("chat", {"prompt": "one"}, credentials), other.run_tool("chat", {"prompt": "two"}, credentials),
                    other.run_tool("batch_chat", {"prompts": '["x", "y"]'}, credentials)]
        assert all(o.ok for o in outcomes) and all(o.variables["warnings"] == [] for o in outcomes)
        after_here, _ = scraped_requests(plugin, settings)
        after_there, _ = scraped_requests(other, settings)
    assert after_here - before == after_there - before == 4  # both processes' calls, read by either


# ----------------------------------------------------------------------------- notifications, links, dead letters


def test_a_dead_lettered_notification_replays_once_and_its_links_decide_once_on_the_cluster(
    plugin: PluginProcess, own_sim: SimulatorProcess, redis_cluster_url: str
) -> None:
    from tests.plugin import test_approval_notifications as notify

    receiver = notify.Receiver(fail={"/flaky": 3})
    try:
        credentials = creds(own_sim, redis_cluster_url, webhook_allowlist="127.0.0.1")  # the local receiver
        text = notify.policy({"flaky": "generic"}, {"director": [{"id": "dana", "channel": "flaky"}]})
        params = notify.route_params(text, {"flaky": {"url": receiver.url("/flaky"), "secret": notify.SECRETS["generic"]}})
        routed = run(plugin, "approval_route", params, credentials)
        [row] = routed["notifications"]
        assert (row["status"], row["attempts"], row["http_status"]) == ("dead_lettered", 3, 500)
        listed = run(plugin, "approval_dead_letters", {"action": "list"}, credentials)
        assert row["dead_letter_id"] in [entry["id"] for entry in listed["entries"]]
        replay = {"action": "replay", "entry_id": row["dead_letter_id"], "approval_endpoint_url": notify.ENDPOINT_URL,
                  "notification_secrets": params["notification_secrets"]}
        replayed = run(plugin, "approval_dead_letters", replay, credentials)
        assert replayed["status"] == "delivered"
        assert run(plugin, "approval_dead_letters", replay, credentials)["status"] == "already_replayed"
        assert len(receiver.at("/flaky")) == 4  # three failures, one delivery
        approve = notify.links_in("generic", receiver.at("/flaky")[3])["approve"]
        assert notify.open_link(plugin, approve, "POST", redis_cluster_url).status == 200
        assert notify.open_link(plugin, approve, "POST", redis_cluster_url).status == 409
        assert run(plugin, "approval_status", {"request_id": params["request_id"]}, credentials)["state"] == "approved"
    finally:
        receiver.close()


# ----------------------------------------------------------------------------- a node that goes away


@contextmanager
def started_cluster(directory: Path, **env: str) -> Iterator[tuple[str, list[int], dict[str, str]]]:
    """A 3-node cluster of the test's own on free ports (devtools/redis_cluster.sh with `env`):
    (URL without password, ports, the script's environment)."""
    ports: list[int] = []
    while len(ports) < 3:
        port = free_port()
        if port < 55000 and port not in ports:  # the cluster bus listens on port + 10000
            ports.append(port)
    script_env = {**os.environ, "REDIS_CLUSTER_PORTS": " ".join(map(str, ports)), "REDIS_CLUSTER_DIR": str(directory), **env}
    up = subprocess.run([str(REDIS_CLUSTER_SCRIPT), "up"], env=script_env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports), ports, script_env
    finally:
        subprocess.run([str(REDIS_CLUSTER_SCRIPT), "down"], env=script_env, capture_output=True, timeout=60)


@pytest.fixture
def own_cluster(tmp_path: Path, redis_cluster_url: str) -> Iterator[tuple[str, list[int], dict[str, str]]]:
    """A cluster of the test's own, to stop a node of; a stopped node is marked failed after 1 s."""
    with started_cluster(tmp_path / "cluster", REDIS_CLUSTER_NODE_TIMEOUT="1000") as cluster:
        yield cluster


def test_a_node_that_stops_gives_clear_messages_and_the_cluster_is_used_again_once_it_is_back(
    plugin: PluginProcess, own_sim: SimulatorProcess, own_cluster: tuple[str, list[int], dict[str, str]]
) -> None:
    url, ports, env = own_cluster
    credentials = creds(own_sim, url)
    run_id = uuid.uuid4().hex[:8]
    assert run(plugin, "approval_route", route_params(f"UP-{run_id}"), credentials)["store"] == "redis"
    redis.Redis(port=ports[1]).shutdown(nosave=True)
    started = time.monotonic()
    outcomes = [plugin.run_tool("approval_route", route_params(f"DOWN-{run_id}-{n}"), credentials, timeout=60) for n in range(6)]
    chat = plugin.run_tool("chat", {"prompt": "while a node is down"}, credentials, timeout=60)
    elapsed = time.monotonic() - started
    failed = [o for o in outcomes if not o.ok]
    assert failed  # a third of the slots are on the stopped node
    for outcome in failed:
        message = outcome.error_message
        assert "internal error" not in message and "Redis" in message, message
        assert "fails closed" in message or "Redis Cluster" in message, message
    assert chat.ok, chat.error  # chat falls back to per-process limits, or its slot is on a node that answers
    assert "internal error" not in json.dumps(chat.variables)
    assert elapsed < 30, elapsed  # each call gives up within seconds; none waits for a timeout of minutes
    # Once the other nodes mark it failed (cluster-node-timeout), the whole cluster answers CLUSTERDOWN: to the
    # plugin a Redis that is down. Chat answers with per-process limits and says so; approvals fail closed.
    live = redis.Redis(port=ports[0])
    end = time.monotonic() + 15
    while b"cluster_state:fail" not in live.execute_command("CLUSTER", "INFO") and time.monotonic() < end:
        time.sleep(0.2)
    assert b"cluster_state:fail" in live.execute_command("CLUSTER", "INFO")
    chat = plugin.run_tool("chat", {"prompt": "while the cluster is down"}, credentials, timeout=60)
    assert chat.ok, chat.error
    assert any("Redis (redis_url) is unreachable" in w for w in chat.variables["warnings"]), chat.variables["warnings"]
    routed = plugin.run_tool("approval_route", route_params(f"CLDOWN-{run_id}"), credentials, timeout=60)
    assert not routed.ok and "fails closed" in routed.error_message and "internal error" not in routed.error_message
    # The node comes back (with its nodes.conf): the same process uses the cluster again.
    up = subprocess.run([str(REDIS_CLUSTER_SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    end = time.monotonic() + 20
    while True:
        again = plugin.run_tool("approval_route", route_params(f"BACK-{run_id}-{time.monotonic_ns()}"), credentials, timeout=60)
        if again.ok or time.monotonic() > end:
            break
        time.sleep(0.2)
    assert again.ok, again.error


def test_a_job_store_whose_redis_fails_does_not_stop_the_jobs_of_other_stores(own_sim: SimulatorProcess, redis_cluster_url: str) -> None:
    """A job store whose Redis fails on every look (here a cluster node behind a redis:// URL, answering
    MOVED) is skipped by the process's job scheduler; the jobs of the stores after it (another workspace's)
    still start."""
    # Another workspace (its own API key): the node that holds the first one's jobs would show its plain-URL
    # store this one's jobs too, were they the same workspace's.
    with PluginProcess() as fresh, SimulatorProcess(api_key=f"sk-other-workspace-{uuid.uuid4().hex}") as other_sim:
        for port in (7101, 7102, 7103):  # the nodes that do not hold the workspace's jobs answer MOVED
            fresh.run_tool("batch_submit", {"prompts": json.dumps(["a"])}, creds(own_sim, f"redis://127.0.0.1:{port}/0"))
        on_cluster = creds(other_sim, redis_cluster_url)
        job = run(fresh, "batch_submit", {"prompts": json.dumps([f"after {i}" for i in range(5)])}, on_cluster)
        end = time.monotonic() + 20
        while not (status := run(fresh, "batch_status", {"job_id": job["job_id"]}, on_cluster))["finished"]:
            assert time.monotonic() < end, status
            time.sleep(0.2)
        assert status["succeeded"] == 5


def test_a_cluster_with_a_password_works_and_a_wrong_one_is_refused_without_repeating_it(
    plugin: PluginProcess, own_sim: SimulatorProcess, tmp_path: Path, redis_cluster_url: str
) -> None:
    secret = "cluster-pass-" + uuid.uuid4().hex[:8]
    with started_cluster(tmp_path / "cluster", REDIS_CLUSTER_PASSWORD=secret) as (url, _ports, _env):
        with_password = url.replace("redis+cluster://", f"redis+cluster://:{secret}@")
        ok, message = plugin.validate(creds(own_sim, with_password))
        assert ok, message
        assert run(plugin, "approval_route", route_params(f"PW-{uuid.uuid4().hex[:8]}"), creds(own_sim, with_password))["store"] == "redis"
        for wrong, says in ((url.replace("redis+cluster://", "redis+cluster://:not-it-123@"), "refused the password"),
                            (url, "needs a password")):
            ok, message = plugin.validate(creds(own_sim, wrong))
            assert not ok and says in message, message
            assert "not-it-123" not in message and secret not in message
        assert secret not in plugin.stderr_text() and "not-it-123" not in plugin.stderr_text()
