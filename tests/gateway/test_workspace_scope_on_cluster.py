"""tests/gateway/test_workspace_scope.py's Redis tests, run again here against the local 3-node Redis Cluster:
a workspace's cache, budgets, breaker, pause, buckets and jobs are its own, and every script it runs
touches its keys in one slot. The tests are that module's own functions (collected here again); only the
URL and the client they connect with change: the plugin's cluster client instead of `redis.Redis`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from gateway.state.redis_connection import ClusterClient, parse_cluster_url
from tests.gateway import test_workspace_scope as single
from tests.gateway.test_workspace_scope import (  # noqa: F401 - collected here, with this module's fixtures
    script_keys,
    test_a_429_pause_and_a_drained_bucket_hold_only_their_own_workspace,
    test_a_cached_reply_is_never_served_to_another_workspace,
    test_a_job_exists_only_in_its_workspace,
    test_a_workspace_spending_its_budget_leaves_another_workspaces_budget_whole,
    test_every_script_touches_one_workspaces_keys_in_one_cluster_slot,
    test_one_workspaces_failures_never_open_another_workspaces_breaker,
)

pytestmark = pytest.mark.redis_cluster


class _RedisOnCluster:
    """The `redis` module as that test module sees it, except that `Redis.from_url` of a cluster URL gives a
    new client of the plugin's kind for it, a client of its own as redis-py's `Redis.from_url` gives (which
    reads one host and no cluster scheme)."""

    class Redis:
        @staticmethod
        def from_url(url: str, **_options: Any) -> Any:
            return ClusterClient(parse_cluster_url(url))

    def __getattr__(self, name: str) -> Any:
        return getattr(redis, name)


@pytest.fixture(autouse=True)
def on_the_cluster(monkeypatch: pytest.MonkeyPatch, redis_cluster_url: str) -> Iterator[None]:
    monkeypatch.setattr(single, "REDIS_URL", redis_cluster_url)
    monkeypatch.setattr(single, "redis", _RedisOnCluster())
    yield


@pytest.fixture
def spaces(on_the_cluster: None, redis_cluster_url: str) -> single.Workspaces:
    return single.Workspaces(redis_cluster_url)


def test_the_workspaces_here_are_on_the_cluster(spaces: single.Workspaces) -> None:
    """The premise of this module: the tests above ran on the cluster, not on the single Redis."""
    client = spaces.state.client  # type: ignore[attr-defined]
    assert isinstance(client, ClusterClient) and len(client.cluster.get_primaries()) == 3
