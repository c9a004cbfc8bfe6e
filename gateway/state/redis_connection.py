"""The one way the plugin connects to Redis, and the one description of what went wrong with it.

`redis_client(url)` gives one client (and so one connection pool) per URL for the life of the process:
the shared gateway state and the approval store pointing at the same Redis share it. A URL starting
`redis+cluster://` (`rediss+cluster://` for TLS) names a Redis Cluster by one or more seed nodes
(`redis+cluster://:PASSWORD@host1:7000,host2:7000`): its client is a `redis.cluster.RedisCluster`, made on
first use, whose cluster-only errors are `redis.RedisError`s like every other (see `ClusterClient`).
`describe_redis_error(exc, client)` turns a redis-py error into a message that says what to fix, and
never repeats the password.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.cluster
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from gateway.errors import gateway_words

SOCKET_TIMEOUT_SECONDS = 2.0
URL_HINT = "redis://:PASSWORD@host:6379/0"
CLUSTER_URL_HINT = "redis+cluster://:PASSWORD@host1:6379,host2:6379"
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


class ClusterProblem(redis.RedisError):
    """A cluster-only error of redis-py (`RedisClusterException` is not a `RedisError`), re-raised as one so
    every `except redis.RedisError` of the plugin handles it; `cause` is the original for the description."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class ClusterUnreachable(ClusterProblem, redis.ConnectionError):
    """No node of the cluster answers: a connection error, so the fallbacks for a Redis that is down apply."""


class ClusterDown(ClusterProblem, redis.ConnectionError):
    """The cluster answers but does not serve every slot (CLUSTERDOWN: a primary without a replica stopped):
    for the plugin, a Redis that is down, so the same fallbacks apply (per-process limits, fail closed)."""


# redis-py raises these when the server cannot be reached or stops answering.
CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def _client_options() -> dict[str, object]:
    return {
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS,
        "health_check_interval": 30,
        "retry_on_timeout": False,
    }


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def redis_client(url: str) -> Any:  # redis.Redis, or ClusterClient for a cluster URL
    """The process's client for `url`. Creating it does not connect. A malformed URL raises ValueError
    (from redis-py) whose message may contain the URL: callers check it first with redis_url_problem."""
    with _lock:
        client = _clients.get(url)
        if client is None:
            plain = not is_cluster_url(url)
            client = redis.Redis.from_url(url, **_client_options()) if plain else ClusterClient(parse_cluster_url(url))  # type: ignore[arg-type]
            _clients[url] = client
        return client


# ----------------------------------------------------------------------------- Redis Cluster


@dataclass(frozen=True)
class ClusterURL:
    """What a cluster URL says: the seed nodes and the connection options common to every node."""

    seeds: tuple[tuple[str, int], ...]
    options: dict[str, Any]

    @property
    def location(self) -> str:
        return "Redis Cluster at " + ",".join(f"{host}:{port}" for host, port in self.seeds)


def parse_cluster_url(url: str) -> ClusterURL:
    """`redis+cluster://[[user]:password@]host[:port][,host[:port]...][/0][?option=value...]`.

    redis-py reads only one host from a URL, so the seeds are split here and the rest (password, TLS and
    query options) is read by redis-py's own parser. Raises ValueError whose message completes "redis_url
    ..." and never repeats the URL."""
    scheme, _, rest = url.partition("://")
    plain_scheme = CLUSTER_SCHEMES.get(scheme.lower())
    if plain_scheme is None:
        raise ValueError("must start with redis+cluster:// or rediss+cluster:// to name a Redis Cluster")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, end)
    userinfo, hosts, tail = rest[: at + 1], rest[at + 1 : end], rest[end:]
    seeds: list[tuple[str, int]] = []
    for seed in hosts.split(","):
        try:
            parts = urlsplit("//" + seed.strip())
            host, port = parts.hostname, parts.port or 6379
        except ValueError:
            host, port = None, 0
        if not host or not (0 < port < 65536):
            raise ValueError("must list the cluster's seed nodes as host or host:port (port 1 to 65535), separated by commas")
        try:
            host.encode("idna")  # what the socket will need; redis-py would fail only at the first command
        except UnicodeError:
            raise ValueError("has a seed node whose host name has characters a host name cannot have") from None
        seeds.append((host, port))
    no_database = "names a database other than 0, and a Redis Cluster has only database 0: end it with /0 or nothing"
    if tail.partition("?")[0].strip("/") not in ("", "0"):
        raise ValueError(no_database)
    try:
        # The options are the same for every node; the host here is a placeholder (the seeds are above).
        options = redis.connection.parse_url(f"{plain_scheme}://{userinfo}seed{tail}")
    except ValueError as exc:
        raise ValueError(f"is not a URL Redis can use ({_scrubbed(exc, url)})") from None
    if options.get("db", 0) != 0:  # ?db=N in the query
        raise ValueError(no_database)
    for name in ("host", "port", "db", "path"):
        options.pop(name, None)
    return ClusterURL(tuple(seeds), options)


class ClusterClient:
    """A `redis.cluster.RedisCluster` for a cluster URL, with what the plugin expects of any client.

    Made on first use, because RedisCluster connects in its constructor and the plugin's stores are built
    before anything may connect (a cluster that is down must fall back or fail like a Redis that is down,
    with a message, not when a store is created). redis-py raises some cluster errors (no node reachable,
    a slot nobody serves) as `RedisClusterException`, which is not a `RedisError`: calls through this
    client, its pipelines and its scripts re-raise them as `ClusterProblem`/`ClusterUnreachable`."""

    def __init__(self, url: ClusterURL) -> None:
        self.url = url
        self._cluster: redis.cluster.RedisCluster | None = None
        self._lock = threading.Lock()

    @property
    def cluster(self) -> redis.cluster.RedisCluster:
        with self._lock:
            if self._cluster is None:
                options = {**_client_options(), **self.url.options}
                options.pop("health_check_interval", None)  # not a node option of RedisCluster
                with _cluster_errors():
                    self._cluster = redis.cluster.RedisCluster(
                        startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in self.url.seeds],
                        # A node that stopped answering is retried briefly, then the error reaches the
                        # caller, whose fallback for a Redis that is down takes over.
                        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
                        **options,
                    )
            return self._cluster

    @property
    def password(self) -> str | None:
        return self.url.options.get("password")

    def get_encoder(self) -> Any:
        """`Script` asks for it when registered; answering without the cluster keeps registering lazy."""
        return redis.connection.Encoder("utf-8", "strict", False)

    def register_script(self, script: str) -> redis.commands.core.Script:
        return redis.commands.core.Script(self, script)  # type: ignore[arg-type]

    def pipeline(self, transaction: bool | None = None, shard_hint: Any = None) -> _ClusterErrors:
        with _cluster_errors():
            return _ClusterErrors(self.cluster.pipeline(transaction=transaction, shard_hint=shard_hint))

    def scan_iter(self, *args: Any, **kwargs: Any) -> Any:
        """Every primary's keys (redis-py's cluster SCAN visits each primary in turn)."""
        with _cluster_errors():
            yield from self.cluster.scan_iter(*args, **kwargs)

    def close(self) -> None:
        with self._lock:
            cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.close()

    def __getattr__(self, name: str) -> Any:
        if not hasattr(redis.cluster.RedisCluster, name):
            # What only a plain client has (connection_pool): absent, said without connecting, so that
            # `getattr(client, "connection_pool", default)` works while the cluster is down too.
            raise AttributeError(name)
        cluster = self._cluster
        if cluster is None:  # the lock only while the cluster client is not made yet
            cluster = self.cluster
        return _wrapped(getattr(cluster, name), None)


class _ClusterErrors:
    """A ClusterPipeline whose calls re-raise cluster-only errors as `ClusterProblem` (and chain to itself)."""

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline

    def __enter__(self) -> _ClusterErrors:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pipeline.reset()

    def __len__(self) -> int:
        return len(self._pipeline)

    def __getattr__(self, name: str) -> Any:
        return _wrapped(getattr(self._pipeline, name), self)


def _wrapped(attribute: Any, chain: _ClusterErrors | None) -> Any:
    if not callable(attribute):
        return attribute

    def call(*args: Any, **kwargs: Any) -> Any:
        try:  # not `with _cluster_errors()`: a plain try costs far less on every Redis call
            result = attribute(*args, **kwargs)
        except _CLUSTER_ONLY as exc:
            raise _as_redis_error(exc) from None
        return chain if chain is not None and result is chain._pipeline else result

    return call


_CLUSTER_ONLY = (RedisClusterException, redis.exceptions.ClusterDownError)


def _as_redis_error(exc: Exception) -> ClusterProblem:
    if isinstance(exc, redis.exceptions.RedisClusterUnreachableError):
        return ClusterUnreachable(exc)
    if isinstance(exc, redis.exceptions.ClusterDownError | redis.exceptions.SlotNotCoveredError):
        return ClusterDown(exc)
    return ClusterProblem(exc)


@contextmanager
def _cluster_errors() -> Iterator[None]:
    try:
        yield
    except _CLUSTER_ONLY as exc:
        raise _as_redis_error(exc) from None


def cluster_url_problem(url: str) -> str | None:
    try:
        parsed = parse_cluster_url(url)
    except ValueError as exc:
        return str(exc)
    # The connection each node would get, checked like a single Redis's (options and values).
    return _url_problem(url.split("://", 1)[0].split("+", 1)[0] + "://seed", parsed.options, url)


def redis_url_problem(url: str) -> str | None:
    """Why redis-py cannot use `url` (its URL parser, its query options, the connection they would make),
    or None. Nothing connects. The message never repeats the URL or its password."""
    if is_cluster_url(url):
        return cluster_url_problem(url)
    return _url_problem(url, {}, url)


def _url_problem(url: str, extra: dict[str, Any], original: str) -> str | None:
    try:
        pool = redis.ConnectionPool.from_url(url, **{**_client_options(), **extra})  # type: ignore[arg-type]
        connection = pool.make_connection()  # builds the connection object (options checked), does not connect
    except Exception as exc:  # whatever redis-py raises on a URL, the credential is what to fix
        return f"is not a URL Redis can use ({_scrubbed(exc, original)})"
    try:
        for name in ("socket_timeout", "socket_connect_timeout", "health_check_interval"):
            value = getattr(connection, name, None)
            if isinstance(value, float | int) and not (0 <= value < 1e9):
                return f"has an unusable {name} (it must be a number of seconds from 0 up)"
    finally:
        pool.disconnect()
    return None


def _scrubbed(exc: BaseException, url: str) -> str:
    """redis-py's message about a URL, bounded, with nothing of the URL's password in it."""
    text = (str(exc)[:300].splitlines() or [type(exc).__name__])[0]
    password = urlsplit_password(url)
    if password:
        text = text.replace(password, "***")
    if "://" in text or "@" in text:
        text = type(exc).__name__
    return gateway_words(text, 200)


def urlsplit_password(url: str) -> str | None:
    try:
        if is_cluster_url(url):  # several host:port pairs are no port urlsplit can read, the password is
            return urlsplit(url.split(",", 1)[0]).password
        return urlsplit(url).password
    except ValueError:
        return None


def redis_location(client: Any) -> str:
    """host:port/db (or the unix socket, or the cluster's seed nodes) of a client, without the password."""
    if isinstance(client, ClusterClient):
        return client.url.location
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix socket {kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def _password(client: Any) -> str | None:
    if isinstance(client, ClusterClient):
        return client.password
    return client.connection_pool.connection_kwargs.get("password")


def is_cluster_node(client: Any) -> bool:
    """Whether a plain client's server is a node of a Redis Cluster (which a plain client cannot use:
    every key on another node answers MOVED). Connects; raises what the INFO call raises."""
    if isinstance(client, ClusterClient):
        return False
    return bool(client.info("cluster").get("cluster_enabled"))


def wrong_kind_problem(client: Any) -> str | None:
    """At credential validation, after a ping worked: a redis:// URL at a cluster node, said at once rather
    than as MOVED errors on the first key another node holds. (The other way round, a cluster URL at a
    plain Redis, fails the ping with a message from describe_redis_error.)"""
    try:
        return cluster_node_message(client) if is_cluster_node(client) else None
    except redis.ResponseError:  # INFO renamed away or not granted to this ACL user: cannot tell, do not refuse
        return None
    except (redis.RedisError, OSError) as exc:
        return describe_redis_error(exc, client)


def cluster_node_message(client: Any) -> str:
    where = redis_location(client).rsplit("/", 1)[0]
    return (
        f"the Redis at {where} is a node of a Redis Cluster, which a redis:// URL cannot use: "
        f"use redis+cluster://{where} (rediss+cluster:// for TLS; add more nodes as host:port separated by "
        f"commas, keep the password as before: {CLUSTER_URL_HINT})"
    )


def describe_redis_error(exc: BaseException, client: Any) -> str:
    """What failed and what to fix, for any error a Redis call raised. The password never appears."""
    password = _password(client)
    where = redis_location(client)
    cluster = isinstance(client, ClusterClient)
    if isinstance(exc, ClusterProblem):
        exc = exc.cause

    def scrub(text: str) -> str:
        return text.replace(str(password), "***") if password else text

    hint = CLUSTER_URL_HINT if cluster else URL_HINT
    needs_password = f"{_at(where)} needs a password; put it in redis_url as {hint}"
    if isinstance(exc, redis.AuthenticationError):
        if password:
            return f"{_at(where)} refused the password in redis_url; check the password part ({hint})"
        return needs_password
    if isinstance(exc, redis.exceptions.RedisClusterUnreachableError):
        return f"cannot reach any node of the {where}. Check the seed nodes' hosts and ports and that the cluster is running"
    if isinstance(exc, CONNECTION_ERRORS):
        detail = scrub(str(exc)).rstrip(". ") or type(exc).__name__
        return f"cannot reach {_at(where)}: {detail}. Check the host, port and that Redis is running"
    message = gateway_words(scrub(str(exc)), 200)
    # redis-py words a refused AUTH (or HELLO) of the cluster's first connection into a RedisClusterException.
    if isinstance(exc, RedisClusterException | redis.ResponseError) and any(mark in message for mark in _AUTH_REFUSED):
        return f"{_at(where)} refused the password in redis_url; check the password part ({hint})" if password else needs_password
    if isinstance(exc, RedisClusterException | redis.ResponseError) and any(mark in message for mark in _AUTH_NEEDED):
        return needs_password
    if isinstance(exc, redis.exceptions.ClusterCrossSlotError | redis.exceptions.MovedError | redis.exceptions.AskError) and not cluster:
        return cluster_node_message(client)
    if isinstance(exc, redis.exceptions.ClusterDownError | redis.exceptions.SlotNotCoveredError):
        return (
            f"the {where} is down or does not serve every hash slot ({message}): check `redis-cli cluster info` "
            "on a node (cluster_state must be ok, all 16384 slots assigned) and that every primary is up"
        )
    if isinstance(exc, redis.exceptions.MovedError | redis.exceptions.AskError | redis.exceptions.TryAgainError):
        return f"the {where} is moving hash slots between nodes (resharding or failover): try again in a moment"
    if isinstance(exc, redis.exceptions.ClusterCrossSlotError | redis.exceptions.CrossSlotTransactionError):
        return (
            f"the {where} refused an operation whose keys are in different hash slots ({message}): this is a "
            "defect of the plugin, please report it; a single Redis (redis://) works meanwhile"
        )
    if isinstance(exc, RedisClusterException) and "cluster mode is not enabled" in message.lower():
        first = where.removeprefix("Redis Cluster at ").split(",", 1)[0]
        return (
            f"the Redis at {first} is not a node of a Redis Cluster, which a redis+cluster:// URL needs: "
            f"use redis://{first}/0 for a single Redis ({URL_HINT})"
        )
    if isinstance(exc, RedisClusterException):
        return f"the {where} cannot be used: {message}. Check the seed nodes in redis_url ({CLUSTER_URL_HINT})"
    if isinstance(exc, redis.ResponseError):
        if "NOAUTH" in message or "WRONGPASS" in message:
            return needs_password
        if "without any password configured" in message:
            return f"{_at(where)} has no password set; remove the password from redis_url"
        return f"{_at(where)} answered with an error: {message}"
    return f"{_at(where)} failed: {message}"


_AUTH_REFUSED = ("invalid username-password pair", "WRONGPASS", "invalid password")
_AUTH_NEEDED = ("NOAUTH", "Authentication required", "must be called with the client already authenticated")


def _at(where: str) -> str:
    return f"the {where}" if where.startswith("Redis Cluster") else f"Redis at {where}"
