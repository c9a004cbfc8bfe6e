"""The one way the plugin connects to Redis, and the one description of what went wrong with it.

`redis_client(url)` gives one client (and so one connection pool) per URL for the life of the process:
the shared gateway state and the approval store pointing at the same Redis share it.
`describe_redis_error(exc, client)` turns a redis-py error into a message that says what to fix, and
never repeats the password.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import redis

from gateway.errors import gateway_words

SOCKET_TIMEOUT_SECONDS = 2.0
URL_HINT = "redis://:PASSWORD@host:6379/0"
# redis-py raises these when the server cannot be reached or stops answering.
CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def _client_options() -> dict[str, object]:
    return {
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS,
        "health_check_interval": 30,
        "retry_on_timeout": False,
    }


def redis_client(url: str) -> redis.Redis:
    """The process's client for `url`. Creating it does not connect. A malformed URL raises ValueError
    (from redis-py) whose message may contain the URL: callers check it first with redis_url_problem."""
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url, **_client_options())  # type: ignore[arg-type]
        return client


def redis_url_problem(url: str) -> str | None:
    """Why redis-py cannot use `url` (its URL parser, its query options, the connection they would make),
    or None. Nothing connects. The message never repeats the URL or its password."""
    try:
        pool = redis.ConnectionPool.from_url(url, **_client_options())  # type: ignore[arg-type]
        connection = pool.make_connection()  # builds the connection object (options checked), does not connect
    except Exception as exc:  # whatever redis-py raises on a URL, the credential is what to fix
        return f"is not a URL Redis can use ({_scrubbed(exc, url)})"
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
        return urlsplit(url).password
    except ValueError:
        return None


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
        detail = scrub(str(exc)).rstrip(".") or type(exc).__name__
        return f"cannot reach Redis at {where}: {detail}. Check the host, port and that Redis is running"
    message = scrub(str(exc))
    if isinstance(exc, redis.ResponseError):
        if "NOAUTH" in message or "WRONGPASS" in message:
            return needs_password
        if "without any password configured" in message:
            return f"Redis at {where} has no password set; remove the password from redis_url"
        return f"Redis at {where} answered with an error: {message}"
    return f"Redis at {where} failed: {message}"
