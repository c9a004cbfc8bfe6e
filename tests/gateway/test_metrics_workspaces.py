"""Metrics per workspace on the real Redis (database 15): label values stay within fixed sets across
processes, nothing a user typed becomes a label, series that stop changing expire, and every write
touches one workspace's keys (one hash tag, so it runs on a Redis Cluster)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from redis.crc import key_slot

from gateway.metrics import (
    LATENCY_BUCKETS,
    CallRecord,
    InProcessMetrics,
    RedisMetrics,
    WorkspaceMetrics,
    WriteBehindMetrics,
    exposition,
)
from gateway.spend.pricing import PriceTable
from gateway.state.keys import workspace_scope
from tests.private_redis import free_port

REDIS_URL = "redis://127.0.0.1:6379/15"
REPO_ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 10
NAMES_PER_PROCESS = 1000
OVERRIDES = {"house-model": {"input": 1.0, "output": 2.0, "aliases": ["house-model-v2"]}}
pytestmark = pytest.mark.redis


@pytest.fixture
def connection() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return client


@pytest.fixture
def api_key(connection: redis.Redis) -> Iterator[str]:
    """A fresh workspace (its gateway API key); its metrics keys are deleted afterwards."""
    key = f"sk-metrics-ws-{uuid.uuid4().hex}"
    yield key
    connection.delete(*RedisMetrics.keys(workspace_scope(key)))


# One plugin process: the client chain (over an in-memory gateway) with its own Redis connection and
# metrics store, making one call per model name, every name one the price table does not know: ids,
# e-mail addresses, free text. It also reports tools, batch statuses and breaker states no tool has.
WORKER = textwrap.dedent(
    """
    import json, sys
    import redis
    from gateway import GatewayClient, GatewayConfig
    from gateway.client import CallOptions
    from gateway.metrics import InProcessMetrics, RedisMetrics
    from gateway.models import ChatRequest
    from gateway.call.retry import RetryPolicy
    from gateway.state.shared import InProcessState
    from gateway.wire.transport import MemoryTransport
    from tests.gateway.helpers import completion

    api_key, process, count, overrides = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    config = GatewayConfig.from_credentials(
        {"api_key": api_key, "base_url": "http://gateway.test/v1", "max_retries": "0", "price_overrides": overrides}
    )
    store = RedisMetrics(redis.Redis.from_url("REDIS_URL"), InProcessMetrics())
    transport = MemoryTransport(handler=lambda method, path, payload: completion("ok", model=payload["model"]))
    client = GatewayClient(config, state=InProcessState(), transport=transport, metrics=store, retry=RetryPolicy(max_retries=0))
    for n in range(count):
        kind = n % 4
        model = (
            f"user{process}-{n}@example.com" if kind == 0
            else f"ft:gpt-4.1:acme:{process}-{n}" if kind == 1  # a fine-tune id: not the price table's gpt-4.1
            else f"job-{process}-{n}-0123456789abcdef" if kind == 2
            else f"Bitte fasse zusammen {process} {n}"
        )
        client.chat(ChatRequest.from_prompt("hi", model=model), CallOptions(tool=f"tool-{process}-{n}", correlation_id=f"hs-{n}"))
    for model in ("gpt-4.1-2025-04-14", "openai/gpt-4.1", "house-model-v2", "HOUSE-MODEL"):
        client.chat(ChatRequest.from_prompt("hi", model=model), CallOptions(tool="chat"))
    client.metrics.record_breaker(f"breaker-{process}", "closed", f"state-{process}")
    client.metrics.record_batch({"ok": 1, f"status-{process}": 2})  # writes, the breaker's figures with it
    print(json.dumps({"sent": len(transport.sent)}))
    """
).replace("REDIS_URL", REDIS_URL)


def run_processes(api_key: str) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, api_key, str(n), str(NAMES_PER_PROCESS), json.dumps(OVERRIDES)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err[-2000:]
        assert json.loads(out)["sent"] == NAMES_PER_PROCESS + 4


def labels_of(text: str) -> dict[str, set[str]]:
    """label name -> every value it has in the exposition (prometheus_client's parser)."""
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for name, value in sample.labels.items():
                out.setdefault(name, set()).add(value)
    return out


def test_ten_processes_seeing_a_thousand_custom_models_each_leave_only_the_price_tables_models(connection: redis.Redis, api_key: str) -> None:
    run_processes(api_key)
    workspace = workspace_scope(api_key)
    sink = WorkspaceMetrics(RedisMetrics(connection, InProcessMetrics()), workspace)
    text = exposition(sink).decode()
    labels = labels_of(text)
    table = set(PriceTable.bundled().models) | set(OVERRIDES)
    # Every call is counted, under at most the price table's models (and the overrides') plus `custom`.
    figures = sink.figures()
    assert sum(v for k, v in figures.items() if k[0] == "requests") == PROCESSES * (NAMES_PER_PROCESS + 4)
    assert labels["model"] <= table | {"custom"}
    assert labels["model"] == {"custom", "gpt-4.1", "house-model"}  # aliases, dated and upper-case names: their model
    assert figures[("requests", "custom", "other", "ok")] == PROCESSES * NAMES_PER_PROCESS
    assert figures[("requests", "gpt-4.1", "chat", "ok")] == PROCESSES * 2
    assert figures[("requests", "house-model", "chat", "ok")] == PROCESSES * 2
    # The other labels: fixed sets whatever the caller passed.
    assert labels["tool"] == {"other", "chat"}
    assert labels["status"] == {"ok", "other"} and figures[("batch_items", "other")] == PROCESSES * 2
    assert labels["state"] <= {"closed", "open", "half_open", "other"} and labels["to_state"] == {"other"}
    assert labels["outcome"] == {"ok"}
    # Nothing a caller sent is in the exposition or in Redis.
    stored = " ".join(f.decode() for f in connection.hkeys(RedisMetrics.keys(workspace)[0]))
    for where in (text, stored):
        for leaked in ("@", "example.com", "ft:", "job-", "Bitte", "tool-", "status-", "breaker-", "state-", "hs-", api_key):
            assert leaked not in where, leaked
    # The ceiling on series holds in Redis too: a few dozen fields for 10,000 distinct names.
    assert connection.hlen(RedisMetrics.keys(workspace)[0]) < 100


def test_an_email_address_or_id_is_never_a_label_value() -> None:
    sink = WorkspaceMetrics(InProcessMetrics(), "wlabels")
    sink.record_attempt("bob@example.com", "http_418")
    sink.record_attempt("0b8f2c1e-5d3a-4c39-9d8e-1f2a3b4c5d6e", "error from bob@example.com")
    sink.record_attempt("gpt-4.1", "http_9999")
    sink.record_retry("req-0123456789abcdef", 0.5)
    sink.record_wait("user 42 asked this", 0.25)
    sink.record_call(CallRecord("bob@example.com", "hs-0123456789abcdef01234567", "req-abc", 0.2, correlation_id="hs-1"))
    sink.record_breaker("bob@example.com", "closed", "bob@example.com")
    sink.record_batch({"bob@example.com": 1})
    text = exposition(sink).decode()
    assert "bob" not in text and "0b8f2c1e" not in text and "req-" not in text and "hs-" not in text and "user 42" not in text
    labels = labels_of(text)
    assert labels["model"] == {"custom", "gpt-4.1"}
    assert labels["outcome"] == {"http_418", "other_error"}
    assert labels["tool"] == {"other"} and labels["status"] == {"other"} and labels["to_state"] == {"other"}


def test_a_series_that_stops_changing_expires_whole_and_one_that_changes_stays(connection: redis.Redis, api_key: str) -> None:
    workspace = workspace_scope(api_key)
    store = RedisMetrics(connection, InProcessMetrics(), ttl=1.5)
    sink = WorkspaceMetrics(store, workspace)
    figures_key, changed_key = RedisMetrics.keys(workspace)
    sink.record_call(CallRecord("deepseek-v3.2", "chat", "ok", 0.02))  # stops here
    sink.record_call(CallRecord("gpt-4.1", "chat", "ok", 0.3))  # bucket 0.5
    time.sleep(1.0)
    sink.record_call(CallRecord("gpt-4.1", "chat", "ok", 2.0))  # bucket 2.5 of the same series: it changed
    time.sleep(0.8)
    sink.record_attempt("gpt-4.1", "ok")
    store.flush()  # a write: stale series go with it
    figures = sink.figures()
    assert not [k for k in figures if "deepseek-v3.2" in k], figures  # counter, buckets and sum all gone
    # The histogram that kept changing keeps every bucket, the one written 1.8 s ago included.
    assert figures[("request_duration_seconds:bucket", "gpt-4.1", "chat", str(LATENCY_BUCKETS.index(0.5)))] == 1
    assert figures[("request_duration_seconds:bucket", "gpt-4.1", "chat", str(LATENCY_BUCKETS.index(2.5)))] == 1
    assert figures[("requests", "gpt-4.1", "chat", "ok")] == 2
    assert not [m for m in connection.zrange(changed_key, 0, -1) if b"deepseek" in m]
    # A workspace that stops writing goes whole: both keys expire `ttl` after the last write.
    assert 0 < connection.pttl(figures_key) <= 1500 and 0 < connection.pttl(changed_key) <= 1500
    time.sleep(1.7)
    assert not connection.exists(figures_key, changed_key)


def test_in_process_series_expire_too() -> None:
    now = [1000.0]
    store = InProcessMetrics(ttl=60, clock=lambda: now[0])
    one, two = WorkspaceMetrics(store, "wone"), WorkspaceMetrics(store, "wtwo")
    one.record_call(CallRecord("gpt-4.1", "chat", "ok", 0.3))
    two.record_call(CallRecord("gpt-4.1", "chat", "ok", 0.3))
    now[0] += 45
    two.record_call(CallRecord("gpt-4.1", "chat", "ok", 0.3))
    now[0] += 30  # one: 75 s without a write; two: 30 s
    assert one.figures() == {} and "wone" not in store.workspaces()
    assert two.figures()[("requests", "gpt-4.1", "chat", "ok")] == 2


def test_workspaces_on_one_redis_see_only_their_own_figures(connection: redis.Redis, api_key: str) -> None:
    other_key = f"sk-metrics-ws-{uuid.uuid4().hex}"
    try:
        store = WriteBehindMetrics(connection, InProcessMetrics())  # one store for the process, as the jobs use it
        mine, theirs = WorkspaceMetrics(store, workspace_scope(api_key)), WorkspaceMetrics(store, workspace_scope(other_key))
        mine.record_call(CallRecord("gpt-4.1", "chat", "ok", 0.3, cost_usd=0.25))
        theirs.record_call(CallRecord("deepseek-v3.2", "batch_chat", "ok", 0.3))
        theirs.record_call(CallRecord("deepseek-v3.2", "batch_chat", "ok", 0.3))
        store.write()  # one write: a script call per workspace, each with its own keys
        assert {k: v for k, v in mine.figures().items() if k[0] == "requests"} == {("requests", "gpt-4.1", "chat", "ok"): 1}
        assert {k: v for k, v in theirs.figures().items() if k[0] == "requests"} == {("requests", "deepseek-v3.2", "batch_chat", "ok"): 2}
        assert "gpt-4.1" not in exposition(theirs).decode() and "deepseek-v3.2" not in exposition(mine).decode()
    finally:
        connection.delete(*RedisMetrics.keys(workspace_scope(other_key)))


@pytest.fixture
def cluster_node(tmp_path: Path) -> Iterator[redis.Redis]:
    """A one-node Redis Cluster holding every slot: it refuses, as any cluster does, a script whose keys
    are in different slots (CROSSSLOT), so a write that spans two hash tags fails here."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    while port + 10000 > 65535 or not _free(port + 10000):  # a cluster node also listens on port + 10000 (its bus)
        port = free_port()
    args = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--cluster-enabled", "yes"]
    process = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert process.poll() is None, "the cluster node did not start"
                time.sleep(0.05)
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        for _ in range(100):
            if b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO"):
                break
            time.sleep(0.05)
        yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.parametrize("client_kind", ["node", "cluster_client"])
def test_every_write_touches_one_hash_slot_so_it_runs_on_a_redis_cluster(cluster_node: redis.Redis, client_kind: str) -> None:
    with pytest.raises(redis.ResponseError, match=r"same slot|CROSSSLOT"):  # the node does refuse what a cluster refuses
        cluster_node.eval("return 1", 2, "{a}:x", "{b}:x")
    figures_key, changed_key = RedisMetrics.keys("wone")
    assert key_slot(figures_key.encode()) == key_slot(changed_key.encode())
    port = cluster_node.connection_pool.connection_kwargs["port"]
    client = cluster_node if client_kind == "node" else redis.RedisCluster(host="127.0.0.1", port=port)  # redis-py's cluster client
    fallback = InProcessMetrics()
    store = WriteBehindMetrics(client, fallback, ttl=1)
    one, two = WorkspaceMetrics(store, "wone"), WorkspaceMetrics(store, "wtwo")
    for sink in (one, two, two):
        sink.record_call(CallRecord("gpt-4.1", "chat", "ok", 0.3))
        sink.record_breaker("gpt-4.1", "closed", "open")
    store.write()  # both workspaces in one round trip: a script call each
    assert fallback.workspaces() == []  # nothing was refused
    assert two.figures()[("requests", "gpt-4.1", "chat", "ok")] == 2 and two.figures()[("breaker_state", "gpt-4.1", "open")] == 1
    assert one.figures()[("requests", "gpt-4.1", "chat", "ok")] == 1
    time.sleep(1.1)
    one.record_attempt("gpt-4.1", "ok")
    store.write()  # one workspace, with stale series to drop
    assert fallback.workspaces() == []
    assert one.figures() == {("attempts", "gpt-4.1", "ok"): 1}
