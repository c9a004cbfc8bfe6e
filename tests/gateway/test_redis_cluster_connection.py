"""gateway.state.redis_connection and check_redis_url for a Redis Cluster: what a cluster URL may say, the client
it gives (lazy, one per URL, errors that are RedisErrors), and every cluster error described with what to fix
and without the password. Against the local 3-node cluster where a server is needed."""

from __future__ import annotations

import uuid

import pytest
import redis
from redis.exceptions import (
    AskError,
    ClusterCrossSlotError,
    ClusterDownError,
    CrossSlotTransactionError,
    MovedError,
    RedisClusterUnreachableError,
    SlotNotCoveredError,
    TryAgainError,
)

from gateway.config import check_redis_url
from gateway.errors import FieldError
from gateway.state.redis_connection import (
    ClusterClient,
    ClusterDown,
    ClusterProblem,
    ClusterUnreachable,
    describe_redis_error,
    parse_cluster_url,
    redis_client,
    redis_location,
    wrong_kind_problem,
)

PASSWORD = "pa55-w0rd-xyz"


# ----------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "seeds", "options"),
    [
        ("redis+cluster://10.0.0.1:7000", (("10.0.0.1", 7000),), {}),
        ("redis+cluster://a:7000,b:7001,c", (("a", 7000), ("b", 7001), ("c", 6379)), {}),
        (f"redis+cluster://:{PASSWORD}@a:7000,b:7001/0", (("a", 7000), ("b", 7001)), {"password": PASSWORD}),
        ("redis+cluster://user:p%40ss@a/", (("a", 6379),), {"username": "user", "password": "p@ss"}),
        ("redis+cluster://[::1]:7000,h", (("::1", 7000), ("h", 6379)), {}),
        ("REDIS+CLUSTER://a:1?socket_timeout=3", (("a", 1),), {"socket_timeout": 3.0}),
    ],
)
def test_a_cluster_url_names_its_seed_nodes_and_options(url: str, seeds: tuple, options: dict) -> None:
    parsed = parse_cluster_url(url)
    assert parsed.seeds == seeds
    assert parsed.options == options
    assert check_redis_url(url) == url


def test_a_tls_cluster_url_makes_tls_connections() -> None:
    parsed = parse_cluster_url("rediss+cluster://:pw@a:7000,b:7000?ssl_cert_reqs=required")
    assert parsed.options["connection_class"] is redis.SSLConnection and parsed.options["ssl_cert_reqs"] == "required"
    assert check_redis_url("rediss+cluster://a:7000") == "rediss+cluster://a:7000"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://a:7000/1", "database other than 0"),
        ("redis+cluster://a:7000,b:7000/15", "database other than 0"),
        ("redis+cluster://a:7000/?db=3", "database other than 0"),
        ("redis+cluster://", "seed nodes as host or host:port"),
        ("redis+cluster://a:7000,,b", "seed nodes as host or host:port"),
        ("redis+cluster://a:99999", "seed nodes as host or host:port"),
        ("redis+cluster://a:port", "seed nodes as host or host:port"),
        ("redis+cluster://a:7000," + "\u00e9" * 64 + ":7000", "host name cannot have"),
        ("redis+cluster://a?no_such_option=1", "is not a URL Redis can use"),
        ("redis+cluster://a?socket_timeout=-2", "unusable socket_timeout"),
    ],
)
def test_a_cluster_url_that_cannot_work_is_refused_saying_what_to_fix(url: str, says: str) -> None:
    with pytest.raises(FieldError) as refused:
        check_redis_url(url)
    message = str(refused.value)
    assert message.startswith("redis_url") and says in message
    assert "redis+cluster://:PASSWORD@host1:6379,host2:6379" in message


def test_a_refused_cluster_url_never_repeats_its_password() -> None:
    for url in (f"redis+cluster://:{PASSWORD}@a:7000/2", f"redis+cluster://:{PASSWORD}@a:x", f"redis+cluster://:{PASSWORD}@a?bad={PASSWORD}"):
        with pytest.raises(FieldError) as refused:
            check_redis_url(url)
        assert PASSWORD not in str(refused.value)


def test_the_plain_url_error_names_the_cluster_schemes() -> None:
    with pytest.raises(FieldError) as refused:
        check_redis_url("cluster://a:7000")
    assert "redis+cluster://" in str(refused.value)


# ----------------------------------------------------------------------------- the client


def test_one_lazy_client_per_cluster_url() -> None:
    url = f"redis+cluster://127.0.0.1:1,127.0.0.1:2?client_name=lazy-{uuid.uuid4().hex[:6]}"
    client = redis_client(url)  # nothing listens there: creating the client does not connect
    assert isinstance(client, ClusterClient) and redis_client(url) is client
    script = client.register_script("return 1")  # registering a script does not connect either
    assert len(script.sha) == 40
    assert redis_location(client) == "Redis Cluster at 127.0.0.1:1,127.0.0.1:2"


def test_a_cluster_nobody_answers_on_is_a_connection_error_described_without_the_password() -> None:
    client = redis_client(f"redis+cluster://:{PASSWORD}@127.0.0.1:1")
    assert getattr(client, "connection_pool", "none") == "none"  # a plain client's attribute: absent, no connecting
    with pytest.raises(redis.ConnectionError) as failed:  # the stores' fallbacks for a Redis that is down apply
        client.get("anything")
    assert isinstance(failed.value, ClusterUnreachable)
    message = describe_redis_error(failed.value, client)
    assert message.startswith("cannot reach any node of the Redis Cluster at 127.0.0.1:1") and PASSWORD not in message


def test_commands_scripts_pipelines_and_scan_work_on_the_cluster(redis_cluster_url: str) -> None:
    client = redis_client(redis_cluster_url)
    run = uuid.uuid4().hex[:8]
    keys = [f"conn-test:{run}:{n}" for n in range(30)]  # no hash tag: they spread over the three nodes
    try:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, key, ex=60)
        assert pipe.execute() == [True] * len(keys)
        assert client.get(keys[0]) == keys[0].encode()
        incr = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1]) + redis.call('INCRBY', KEYS[2], ARGV[1])")
        tagged = [f"conn-test:{{{run}}}:a", f"conn-test:{{{run}}}:b"]
        assert incr(keys=tagged, args=[2]) == 4
        client.expire(tagged[0], 60)
        client.expire(tagged[1], 60)
        # SCAN visits every primary: all keys are found, though no node holds them all.
        assert sorted(k.decode() for k in client.scan_iter(match=f"conn-test:{run}:*", count=100)) == sorted(keys)
        slots = {client.cluster.keyslot(key) for key in keys}
        owners = {client.cluster.nodes_manager.get_node_from_slot(slot).name for slot in slots}
        assert len(owners) == 3
        # A transaction over keys in two slots is refused by redis-py: a RedisError here, described.
        with pytest.raises(redis.RedisError) as refused:
            tx = client.pipeline(transaction=True)
            tx.set(keys[0], 1).set(keys[1], 1)
            tx.execute()
        assert "different hash slots" in describe_redis_error(refused.value, client)
    finally:
        client.delete(*keys)


def test_a_redis_url_at_a_cluster_node_is_told_to_use_the_cluster_scheme(redis_cluster_url: str) -> None:
    node = redis_client("redis://127.0.0.1:7102/0")
    message = wrong_kind_problem(node)
    assert message is not None and "is a node of a Redis Cluster" in message and "redis+cluster://127.0.0.1:7102" in message
    assert wrong_kind_problem(redis_client(redis_cluster_url)) is None
    assert wrong_kind_problem(redis_client("redis://127.0.0.1:6379/15")) is None


def test_a_cluster_url_at_a_single_redis_is_told_to_use_redis_url() -> None:
    client = redis_client("redis+cluster://127.0.0.1:6379")
    with pytest.raises(redis.RedisError) as failed:
        client.ping()
    assert "is not a node of a Redis Cluster" in describe_redis_error(failed.value, client)
    assert "redis://127.0.0.1:6379/0" in describe_redis_error(failed.value, client)


# ----------------------------------------------------------------------------- every cluster error described


def plain() -> redis.Redis:
    return redis.Redis.from_url(f"redis://:{PASSWORD}@10.1.2.3:7000/0")


def cluster() -> ClusterClient:
    return ClusterClient(parse_cluster_url(f"redis+cluster://:{PASSWORD}@10.1.2.3:7000,10.1.2.4:7000"))


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (MovedError("3999 10.1.2.4:7000"), "is a node of a Redis Cluster"),
        (AskError("3999 10.1.2.4:7000"), "is a node of a Redis Cluster"),
        (ClusterCrossSlotError("Keys in request don't hash to the same slot"), "use redis+cluster://10.1.2.3:7000"),
    ],
)
def test_cluster_answers_to_a_plain_client_say_use_the_cluster_scheme(error: Exception, says: str) -> None:
    message = describe_redis_error(error, plain())
    assert says in message and "redis+cluster://10.1.2.3:7000" in message and PASSWORD not in message


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (ClusterDownError("CLUSTERDOWN The cluster is down"), "is down or does not serve every hash slot"),
        (ClusterProblem(SlotNotCoveredError('Slot "12" is not covered by the cluster.')), "cluster_state must be ok"),
        (MovedError("3999 10.1.2.4:7000"), "moving hash slots"),
        (AskError("3999 10.1.2.4:7000"), "moving hash slots"),
        (TryAgainError("TRYAGAIN"), "moving hash slots"),
        (ClusterCrossSlotError("CROSSSLOT Keys in request don't hash to the same slot"), "defect of the plugin"),
        (ClusterProblem(CrossSlotTransactionError("Cannot run a transaction across slots")), "defect of the plugin"),
        (ClusterUnreachable(RedisClusterUnreachableError("Redis Cluster cannot be connected")), "cannot reach any node"),
        (redis.AuthenticationError("invalid password"), "refused the password in redis_url"),
        (redis.ConnectionError(f"Error connecting with {PASSWORD}"), "cannot reach the Redis Cluster at 10.1.2.3:7000,10.1.2.4:7000"),
    ],
)
def test_cluster_errors_say_what_to_fix_without_the_password(error: Exception, says: str) -> None:
    message = describe_redis_error(error, cluster())
    assert says in message, message
    assert PASSWORD not in message and "internal error" not in message
    assert "10.1.2.3:7000" in message or "defect" in message or "moving" in message


def test_a_cluster_that_does_not_serve_every_slot_counts_as_a_redis_that_is_down() -> None:
    """CLUSTERDOWN (a primary without a replica stopped): the stores' fallbacks for a Redis that is down
    apply (per-process limits, approvals fail closed), and the message says what to check."""
    for cause in (ClusterDownError("CLUSTERDOWN The cluster is down"), SlotNotCoveredError('Slot "7" is not covered by the cluster.')):
        error = ClusterDown(cause)
        assert isinstance(error, redis.ConnectionError)
        assert "does not serve every hash slot" in describe_redis_error(error, cluster())


def test_a_redis_that_does_not_let_the_plugin_run_info_is_not_refused(private_redis) -> None:
    """Managed Redis may rename INFO away or not grant it to the plugin's user: validation cannot tell
    whether it is a cluster node then, and does not refuse it for that."""
    admin = redis.Redis.from_url(private_redis.url)
    admin.acl_setuser("plugin", enabled=True, passwords=["+plugin-pass-1"], keys=["*"], commands=["+@all", "-info"])
    client = redis_client(f"redis://plugin:plugin-pass-1@127.0.0.1:{private_redis.port}/0")
    client.ping()
    assert wrong_kind_problem(client) is None
