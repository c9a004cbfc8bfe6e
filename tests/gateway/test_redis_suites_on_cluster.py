"""The single-Redis store tests of tests/redis/ (shared gateway state, budgets and reply cache, auto-approval
limits) and of the approval store (tests/approval_state: its compare-and-set contract, workspaces), run
again here against the local 3-node Redis Cluster. The tests are those modules' own functions (collected
here again); only the URL and the client they connect with change: the plugin's cluster client instead of
`redis.Redis`. Left out: tests that stop a private redis-server or spawn processes (the patched client does
not reach a spawned process); tests/redis_cluster covers those cases on a cluster itself."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import redis

from gateway.state.redis_connection import ClusterClient, parse_cluster_url
from tests.approval import test_approval_limits_redis as limits
from tests.approval import test_redis_store as approvals
from tests.approval.test_approval_limits_redis import (  # noqa: F401 - collected here, with the fixtures below
    scope,
    test_a_gate_with_redis_url_counts_in_redis_shared_by_every_gate,
    test_an_amount_over_one_limit_takes_from_none,
    test_keys_share_one_hash_tag_expire_with_their_period_and_name_nobody,
    test_takes_until_a_limit_then_refuses_without_counting,
    test_the_same_request_is_counted_once,
)
from tests.approval.test_redis_store import (  # noqa: F401
    TestRedisStore,
    namespace,
    other_workspace,
    test_a_link_of_another_workspace_is_not_found_and_claims_nothing,
    test_concurrent_write_with_expected_version_is_a_stale_refusal,
    test_concurrent_write_without_expected_version_is_retried,
    test_keys_hold_the_request_id_and_the_idempotency_entry_expires,
    test_two_workspaces_on_one_redis_hold_independent_records,
)
from tests.gateway import test_redis_budget as budget
from tests.gateway import test_redis_state as state
from tests.gateway.test_redis_budget import (  # noqa: F401
    test_the_reply_cache_is_shared_and_falls_back_to_the_process_while_redis_is_down,
    test_two_processes_reserving_at_once_never_pass_the_limit,
)
from tests.gateway.test_redis_state import (  # noqa: F401
    base_url,
    test_a_429_pause_in_one_process_holds_the_other,
    test_breaker_opened_in_one_process_is_open_in_the_other,
    test_reservation_past_the_deadline_is_refused_without_spending,
    test_shared_breaker_counts_successes_from_every_process,
    test_two_processes_share_one_rpm_budget,
)

pytestmark = pytest.mark.redis_cluster
SUITES: tuple[ModuleType, ...] = (limits, budget, state, approvals)


class _RedisOnCluster:
    """The `redis` module as those test modules see it, except that `Redis.from_url` of a cluster URL gives a
    new client of the plugin's kind for it, a client of its own as redis-py's `Redis.from_url` gives (which
    reads one host and no cluster scheme)."""

    class Redis:
        @staticmethod
        def from_url(url: str, **options: Any) -> Any:
            return ClusterClient(parse_cluster_url(url)) if "+cluster://" in url else redis.Redis.from_url(url, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(redis, name)


@pytest.fixture(autouse=True)
def on_the_cluster(monkeypatch: pytest.MonkeyPatch, redis_cluster_url: str) -> Iterator[None]:
    for module in SUITES:
        monkeypatch.setattr(module, "REDIS_URL", redis_cluster_url)
        monkeypatch.setattr(module, "redis", _RedisOnCluster())
    yield


def test_the_suites_here_connect_to_the_cluster() -> None:
    """The premise of this module: the tests above ran on the cluster, not on the single Redis."""
    for module in SUITES:
        client = module.redis.Redis.from_url(module.REDIS_URL)
        assert isinstance(client, ClusterClient) and len(client.cluster.get_primaries()) == 3
