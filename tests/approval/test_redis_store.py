"""The approval store in the real Redis on 127.0.0.1:6379 (database 15, a fresh workspace scope per test)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

from approval.records import StoreUnavailable, UnknownRequest
from approval.redis_store import IDEMPOTENCY_TTL_SECONDS, RedisApprovalStore
from approval.store_choice import REDIS, store_for
from gateway.state.keys import PREFIX, Keys
from gateway.state.redis_connection import redis_client
from tests.approval.store_contract import NOW, CompareAndSetContract, StoreFactory, routed
from tests.private_redis import PrivateRedis, free_port

REDIS_URL = "redis://127.0.0.1:6379/15"
pytestmark = pytest.mark.redis


def scoped_keys() -> Iterator[Keys]:
    """A workspace of the test's own, and its keys deleted afterwards."""
    keys = Keys(f"test{uuid.uuid4().hex[:12]}")
    yield keys
    client = redis.Redis.from_url(REDIS_URL)
    found = [*client.scan_iter(match=f"{PREFIX}:{{{keys.scope}:*", count=500),
             *client.scan_iter(match=f"{PREFIX}:{keys.scope}:*", count=500)]
    if found:
        client.delete(*found)
    client.close()


namespace = pytest.fixture(scoped_keys)
other_workspace = pytest.fixture(scoped_keys)


def own_connection(url: str, namespace: Keys) -> RedisApprovalStore:
    """A store with a client and connection pool of its own, as a separate plugin process has."""
    return RedisApprovalStore(redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0), namespace)


class TestRedisStore(CompareAndSetContract):
    @pytest.fixture
    def stores(self, namespace: str) -> StoreFactory:
        return lambda: own_connection(REDIS_URL, namespace)


def test_keys_hold_the_request_id_and_the_idempotency_entry_expires(namespace: Keys) -> None:
    store = RedisApprovalStore.from_url(REDIS_URL, namespace)
    store.create(routed("PO-2025-0042"))
    store.transition(
        "PO-2025-0042",
        event="claim",
        actor_id="bob",
        actor_level="vp",
        now=NOW,
        idempotency_key="secret-ish key",
    )
    keys = sorted(k.decode() for k in store.client.scan_iter(match=f"{PREFIX}:{{{namespace.scope}:*"))
    tag = f"holysheep:{{{namespace.scope}:a:PO-2025-0042}}"  # one hash tag: workspace and request
    assert keys[:2] == [f"{tag}:history", f"{tag}:idem:" + hashlib.sha256(b"secret-ish key").hexdigest()]
    assert keys[2] == f"{tag}:record"
    assert not any("secret-ish" in key for key in keys)
    assert 0 < store.client.ttl(keys[1]) <= IDEMPOTENCY_TTL_SECONDS
    assert store.client.ttl(keys[2]) == -1  # records do not expire
    assert store.client.type(keys[0]) == b"list"


class Interleaved(RedisApprovalStore):
    """Lets another process write between this store's read of the record and its compare-and-set."""

    def __init__(self, url: str, namespace: Keys, intruder: Any) -> None:
        super().__init__(own_connection(url, namespace).client, namespace)
        self.intruder = intruder
        self.reads = 0
        self.original_get = self.client.get

        def get(key: str) -> Any:
            value = self.original_get(key)
            if key.endswith(":record"):
                self.reads += 1
                if self.reads == 1:
                    self.intruder()
            return value

        self.client.get = get  # type: ignore[method-assign]


def test_concurrent_write_without_expected_version_is_retried(namespace: Keys) -> None:
    other = own_connection(REDIS_URL, namespace)
    other.create(routed())

    def intruder() -> None:
        other.transition("REQ-1", event="claim", actor_id="carol", actor_level="vp", now=NOW)

    store = Interleaved(REDIS_URL, namespace, intruder)
    result = store.transition("REQ-1", event="escalate", actor_id="bob", actor_level="manager", now=NOW)
    # Computed first against pending, the escalation is recomputed against under_review and applied there.
    assert (result.accepted, result.state, result.version, result.required_level) == (
        True,
        "escalated",
        3,
        "vp",
    )
    history = store.history("REQ-1")
    assert [(e.get("from_state"), e["state"]) for e in history] == [
        (None, "pending"),
        ("pending", "under_review"),
        ("under_review", "escalated"),
    ]


def test_concurrent_write_with_expected_version_is_a_stale_refusal(namespace: Keys) -> None:
    other = own_connection(REDIS_URL, namespace)
    other.create(routed())

    def intruder() -> None:
        other.transition("REQ-1", event="reject", actor_id="carol", actor_level="vp", now=NOW)

    store = Interleaved(REDIS_URL, namespace, intruder)
    result = store.transition(
        "REQ-1",
        event="approve",
        actor_id="bob",
        actor_level="vp",
        expected_version=1,
        now=NOW,
        idempotency_key="a",
    )
    assert (result.accepted, result.code, result.state, result.version) == (
        False,
        "stale_version",
        "rejected",
        2,
    )
    # The refusal is what the key returns from now on; the record is carol's rejection.
    assert (
        other.transition(
            "REQ-1",
            event="approve",
            actor_id="bob",
            actor_level="vp",
            expected_version=1,
            now=NOW,
            idempotency_key="a",
        )
        == result
    )
    stored = other.get("REQ-1")
    assert stored is not None and stored.state == "rejected"


def test_redis_stopped_mid_run_fails_closed(private_redis: PrivateRedis) -> None:
    store = own_connection(private_redis.url, Keys("test"))
    store.create(routed(deadline=NOW + timedelta(hours=1)))
    first = store.transition(
        "REQ-1", event="claim", actor_id="bob", actor_level="vp", expected_version=1, now=NOW
    )
    assert first.accepted
    private_redis.stop()
    with pytest.raises(StoreUnavailable) as caught:
        store.transition(
            "REQ-1", event="approve", actor_id="bob", actor_level="vp", expected_version=2, now=NOW
        )
    message = str(caught.value)
    assert "Redis is unreachable" in message and "fails closed" in message
    assert f"127.0.0.1:{private_redis.port}" in message
    assert private_redis.password not in message
    for call in (
        lambda: store.get("REQ-1"),
        lambda: store.history("REQ-1"),
        lambda: store.create(routed("REQ-2")),
    ):
        with pytest.raises(StoreUnavailable):
            call()


def test_wrong_password_is_unavailable_without_leaking_it(private_redis: PrivateRedis) -> None:
    wrong = "not-the-password-42"
    store = own_connection(f"redis://:{wrong}@127.0.0.1:{private_redis.port}/0", Keys("test"))
    with pytest.raises(StoreUnavailable) as caught:
        store.transition("REQ-1", event="approve", actor_id="bob", actor_level="vp", now=NOW)
    message = str(caught.value)
    assert "refused the password in redis_url" in message and "fails closed" in message
    assert wrong not in message and private_redis.password not in message


def test_missing_password_says_so(private_redis: PrivateRedis) -> None:
    store = own_connection(f"redis://127.0.0.1:{private_redis.port}/0", Keys("test"))
    with pytest.raises(StoreUnavailable, match="needs a password"):
        store.get("REQ-1")


def test_nothing_listening_is_unavailable() -> None:
    store = own_connection(f"redis://:pw-xyz@127.0.0.1:{free_port()}/0", Keys("test"))
    with pytest.raises(StoreUnavailable) as caught:
        store.create(routed())
    assert "cannot reach Redis at 127.0.0.1:" in str(caught.value) and "pw-xyz" not in str(caught.value)


def test_the_right_password_works(private_redis: PrivateRedis) -> None:
    store = own_connection(private_redis.url, Keys("test"))
    store.create(routed())
    with pytest.raises(UnknownRequest):
        store.transition("REQ-X", event="claim", actor_id="bob", actor_level="vp", now=NOW)


def test_stores_for_one_url_share_the_process_connection_pool() -> None:
    """The approval store and the gateway's shared state use one client per URL (gateway.state.redis_connection)."""
    first, second = store_for(REDIS_URL, keys=Keys("a")), store_for(REDIS_URL, keys=Keys("b"))
    assert first.name == second.name == REDIS
    assert isinstance(first.store, RedisApprovalStore) and isinstance(second.store, RedisApprovalStore)
    assert first.store.client is second.store.client is redis_client(REDIS_URL)
    other = store_for("redis://127.0.0.1:6379/14", keys=Keys("a")).store
    assert isinstance(other, RedisApprovalStore) and other.client is not first.store.client


def test_a_url_redis_cannot_read_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValueError, match=r"^redis_url: not a Redis URL; use redis://") as caught:
        RedisApprovalStore.from_url("http://user:hunter2@host:80/", Keys("a"))
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match=r"^scope:"):
        Keys("bad{ns}")
    with pytest.raises(ValueError, match=r"^keys:"):
        store_for(REDIS_URL)


def test_two_workspaces_on_one_redis_hold_independent_records(namespace: Keys, other_workspace: Keys) -> None:
    """The same request id in two workspaces is two records; to the other workspace a record does not exist,
    exactly as an id that never existed, and it can neither change nor block it."""
    mine, theirs = own_connection(REDIS_URL, namespace), own_connection(REDIS_URL, other_workspace)
    mine.create(routed("SAME-1"), summary={"summary": "A's request text"})
    assert theirs.get("SAME-1") is None and theirs.history("SAME-1") == [] and theirs.get_summary("SAME-1") is None
    with pytest.raises(UnknownRequest) as unknown:
        theirs.transition("SAME-1", event="approve", actor_id="eve", actor_level="executive", now=NOW)
    with pytest.raises(UnknownRequest) as never:
        theirs.transition("NEVER-1", event="approve", actor_id="eve", actor_level="executive", now=NOW)
    assert str(unknown.value).replace("SAME-1", "X") == str(never.value).replace("NEVER-1", "X")
    theirs.create(routed("SAME-1"))  # not "already routed": their own record
    assert theirs.transition("SAME-1", event="claim", actor_id="eve", actor_level="vp", now=NOW).accepted
    assert (mine.get("SAME-1").state, mine.get("SAME-1").version) == ("pending", 1)
    assert [entry["kind"] for entry in mine.history("SAME-1")] == ["created"]


def test_a_link_of_another_workspace_is_not_found_and_claims_nothing(namespace: Keys, other_workspace: Keys) -> None:
    """apply_link_decision and preview_link act only in the store's own workspace: a link naming another is
    "not found" in the words of a request that never existed, and its nonce is not even claimed."""
    from approval.decisions import UNKNOWN_REQUEST, apply_link_decision, preview_link
    from approval.links import LinkClaims

    mine = own_connection(REDIS_URL, namespace)
    mine.create(routed("LINKED-1"))
    theirs = LinkClaims("LINKED-1", 1, "approve", "dana", "executive", 4_102_444_800, "nonce-1", other_workspace.scope)
    never = LinkClaims("NEVER-1", 1, "approve", "dana", "executive", 4_102_444_800, "nonce-2", namespace.scope)
    outcome, absent = apply_link_decision(mine, theirs, now=0.0), apply_link_decision(mine, never, now=0.0)
    assert outcome.status == absent.status == UNKNOWN_REQUEST
    assert outcome.message.replace("LINKED-1", "X") == absent.message.replace("NEVER-1", "X")
    assert preview_link(mine, theirs).message == outcome.message and not preview_link(mine, theirs).usable
    assert mine.client.get(mine.keys.approval_link("nonce-1")) is None
    assert mine.client.get(other_workspace.approval_link("nonce-1")) is None
    assert (mine.get("LINKED-1").state, mine.get("LINKED-1").version) == ("pending", 1)
