"""The one way the plugin connects to Redis, and the one description of what went wrong with it.

`redis_client(url)` gives one client (and so one connection pool) per URL for the life of the process:
the shared gateway state and the approval store pointing at the same Redis share it.
`describe_redis_error(exc, client)` turns a redis-py error into a message that says what to fix, and
never repeats the password.
"""

from __future__ import annotations

import threading

import redis

SOCKET_TIMEOUT_SECONDS = 2.0
URL_HINT = "redis://:PASSWORD@host:6379/0"
# redis-py raises these when the server cannot be reached or stops answering.
CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def redis_client(url: str) -> redis.Redis:
    """The process's client for `url`. Creating it does not connect. A malformed URL raises ValueError
    (from redis-py) whose message may contain the URL: callers report it without the URL."""
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(
                url,
                socket_timeout=SOCKET_TIMEOUT_SECONDS,
                socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
                health_check_interval=30,
                retry_on_timeout=False,
            )
        return client


def redis_location(client: redis.Redis) -> str:
    """host:port/db (or the unix socket) of a client, without the password."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix socket {kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def describe_redis_error(exc: BaseException, client: redis.Redis) -> str:
    """What failed and what to fix, for any error a Redis call raised. The password never appears."""
    kwargs = client.connection_pool.connection_kwargs
    password = kwargs.get("password")
    where = redis_location(client)

    def scrub(text: str) -> str:
        return text.replace(str(password), "***") if password else text

    needs_password = f"Redis at {where} needs a password; put it in redis_url as {URL_HINT}"
    if isinstance(exc, redis.AuthenticationError):
        if password:
            return f"Redis at {where} refused the password in redis_url; check the password part ({URL_HINT})"
        return needs_password
    if isinstance(exc, CONNECTION_ERRORS):
        detail = scrub(str(exc)) or type(exc).__name__
        return f"cannot reach Redis at {where}: {detail}. Check the host, port and that Redis is running"
    message = scrub(str(exc))
    if isinstance(exc, redis.ResponseError):
        if "NOAUTH" in message or "WRONGPASS" in message:
            return needs_password
        if "without any password configured" in message:
            return f"Redis at {where} has no password set; remove the password from redis_url"
        return f"Redis at {where} answered with an error: {message}"
    return f"Redis at {where} failed: {message}"
