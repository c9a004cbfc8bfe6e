"""The Redis stores themselves on the local 3-node Redis Cluster, where a runtime test would not show which
node did what: multi-key scripts of one unit run in one slot while the units spread over the nodes, the
auto-approval limits script, and the cleanup of data written before the scoping (SCAN on every primary)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from approval.limits import REPLAYED, TAKEN, RedisLimitStore, counters_for
from approval.policy import PeriodLimit
from devtools import redis_legacy
from gateway.state.keys import PREFIX, Keys
from gateway.state.redis_connection import ClusterClient, redis_client

pytestmark = pytest.mark.redis_cluster

LIMITS = (PeriodLimit("per_requester", "day", 2, Decimal(800)), PeriodLimit("total", "day", 200, Decimal(20000)))


@pytest.fixture
def client(redis_cluster_url: str) -> ClusterClient:
    return redis_client(redis_cluster_url)


@pytest.fixture
def scope(client: ClusterClient) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex}"
    yield name
    keys = list(client.scan_iter(match=f"*{name}*", count=1000))
    if keys:
        client.delete(*keys)


def node_of(client: ClusterClient, key: str) -> str:
    return client.cluster.nodes_manager.get_node_from_slot(client.cluster.keyslot(key)).name


def test_each_workspace_unit_has_one_slot_and_the_units_spread_over_the_nodes(client: ClusterClient) -> None:
    """What a script touches shares one slot; different workspaces and records land on different nodes."""
    slots = set()
    for n in range(30):
        keys = Keys.for_api_key(f"sk-cluster-test-{n}")
        record = [keys.approval(f"R-{n}", part) for part in ("record", "history", "summary", "idem:x")]
        assert len({client.cluster.keyslot(k) for k in record}) == 1
        assert len({client.cluster.keyslot(keys.job("j1", p)) for p in ("meta", "items", "res")} | {client.cluster.keyslot(keys.jobs_open())}) == 1
        assert len({client.cluster.keyslot(keys.budget(c)) for c in ("plugin:day", "app:a:day")}) == 1
        assert len({client.cluster.keyslot(keys.gateway("http://g", p)) for p in ("rl:x:rpm", "pause", "breaker:m")}) == 1
        slots.add(node_of(client, record[0]))
    assert len(slots) == 3  # 30 records, three nodes: each holds some


def test_the_auto_approval_limits_script_counts_on_the_cluster(client: ClusterClient, scope: str) -> None:
    store = RedisLimitStore(client, Keys(scope))
    counters = counters_for(LIMITS, "amy", datetime.now(UTC))
    expires = max(c.expires_at for c in counters)
    first = store.take("m1", counters, 10000, expires)
    assert first.status == TAKEN and first.usage == ((0, 0), (0, 0))
    assert store.take("m1", counters, 10000, expires).status == REPLAYED  # the same request counts once
    second = store.take("m2", counters, 10000, expires)
    assert second.status == TAKEN and second.usage == ((1, 10000), (1, 10000))
    third = store.take("m3", counters, 10000, expires)
    assert third.status != TAKEN  # per requester: 2 a day


def test_the_legacy_cleanup_finds_and_removes_old_keys_on_every_node(client: ClusterClient) -> None:
    run = uuid.uuid4().hex[:8]
    # Written the way versions before the scoping wrote them: no hash tags, so they spread over the nodes.
    old = [f"{PREFIX}:cache:{run}-{n}" for n in range(40)] + [f"{PREFIX}:approval:{run}-{n}:record" for n in range(20)]
    keep = f"other-app:{run}"
    try:
        pipe = client.pipeline(transaction=False)
        for key in [*old, keep]:
            pipe.set(key, "x", ex=300)
        pipe.execute()
        assert len({node_of(client, key) for key in old}) == 3
        patterns = (f"{PREFIX}:cache:{run}-*", f"{PREFIX}:approval:{run}-*")
        counted = redis_legacy.clean(client, patterns=patterns)
        assert counted.found == {patterns[0]: 40, patterns[1]: 20}
        removed = redis_legacy.clean(client, delete=True, patterns=patterns)
        assert removed.deleted == {patterns[0]: 40, patterns[1]: 20}
        assert client.exists(*old) == 0 and client.exists(keep) == 1
    finally:
        client.delete(*old, keep)


def test_the_legacy_cleanup_command_takes_a_cluster_url(redis_cluster_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert redis_legacy.main([redis_cluster_url]) == 0
    assert "dry run" in capsys.readouterr().out
    assert redis_legacy.main([redis_cluster_url + "/2"]) == 2
    assert "database other than 0" in capsys.readouterr().err
