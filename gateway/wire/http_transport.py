"""The real transport: a requests.Session with a keep-alive pool, connect and read timeouts split, and
every body read bounded by the call's deadline. Classifies what requests and urllib3 raise."""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from gateway.config import GatewayConfig
from gateway.errors import GatewayError, GatewayTimeoutError, Redactor, UpstreamUnavailableError, gateway_words
from gateway.wire.transport import Attempt, AttemptFailed, BodyReadError, Deadline

USER_AGENT = "holysheep-dify-plugin/0.1.0"
DEFAULT_POOL_SIZE = 16
_READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
TLS_MINIMUM = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
# What OpenSSL says when the two sides share no TLS version.
_NO_COMMON_VERSION = ("PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE", "no protocols available", "WRONG_SSL_VERSION")


class TLSFloorAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections (direct or through a proxy) refuse TLS older than `minimum`."""

    def __init__(self, minimum: ssl.TLSVersion, **kwargs: Any) -> None:
        self.tls_minimum = minimum
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_minimum_version"] = self.tls_minimum
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["ssl_minimum_version"] = self.tls_minimum
        return super().proxy_manager_for(proxy, **proxy_kwargs)


class HTTPResponse:
    __slots__ = ("_raw", "_response", "headers", "reason", "status")

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self._raw = response.raw
        self.status = response.status_code
        self.reason = response.reason or ""
        self.headers = response.headers  # case-insensitive

    def read_chunk(self, deadline: Deadline, size: int) -> bytes:
        # requests' read timeout applies per read and was fixed when the request was sent, so a gateway
        # trickling bytes could outlive the deadline: the next socket read is capped at the time left.
        sock = getattr(getattr(self._raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(max(0.001, deadline.remaining))
        try:
            return self._raw.read1(size, decode_content=True)  # what has arrived, not a full buffer
        except _READ_ERRORS as exc:
            timed_out = isinstance(exc, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError | TimeoutError)
            raise BodyReadError(timed_out) from None

    def close(self) -> None:
        self._response.close()


class HTTPTransport:
    def __init__(self, config: GatewayConfig, redact: Redactor, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.base_url = config.base_url
        self.host = config.base_url.split("/")[2]
        self.connect_timeout = config.connect_timeout_seconds
        self.tls_min_version = config.tls_min_version
        self.redact = redact
        self._pool_size = 0
        self._pool_lock = threading.Lock()
        self.session = requests.Session()
        # trust_env makes requests re-read the proxy variables and ~/.netrc on every call (a tenth of the
        # client's CPU per call, measured), and a netrc entry would silently replace our Authorization
        # header. The environment is read once instead: HTTP(S)_PROXY/NO_PROXY and the CA bundle variables.
        self.session.trust_env = False
        self.session.proxies = requests.utils.get_environ_proxies(config.base_url)
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.headers.update(
            {
                "Authorization": f"Bearer {config.api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
                "User-Agent": USER_AGENT,
            }
        )
        self.ensure_pool(pool_size)

    def ensure_pool(self, size: int) -> None:
        """Grows the keep-alive pool so `size` parallel calls each get a connection."""
        with self._pool_lock:
            if size <= self._pool_size:
                return
            self._pool_size = size
            # max_retries=0: our RetryPolicy decides; urllib3 retrying too would stack retries (LiteLLM's 3x bug).
            adapter = TLSFloorAdapter(
                TLS_MINIMUM[self.tls_min_version], pool_connections=4, pool_maxsize=size, max_retries=0, pool_block=False
            )
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)

    @property
    def pool_size(self) -> int:
        return self._pool_size

    def close(self) -> None:
        self.session.close()

    def send(self, method: str, path: str, body: bytes | None, *, timeout: float, headers: dict[str, str] | None = None) -> HTTPResponse:
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                data=body,
                headers=headers,
                stream=True,
                timeout=(min(self.connect_timeout, timeout), timeout),
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            # Not retried: certificate and protocol failures do not clear up, and a TLS error while reading
            # the response would mean a second, billed, completion.
            raise AttemptFailed(Attempt(self._connection_error("TLS handshake failed", exc), False)) from None
        except requests.exceptions.ConnectTimeout as exc:
            raise AttemptFailed(Attempt(self._connection_error("connecting timed out", exc, timeout=True), True)) from None
        except requests.exceptions.ReadTimeout:
            error = GatewayTimeoutError(
                f"no response within {timeout:.0f}s; not retried because the gateway may already have "
                "processed (and billed) the request. Raise timeout_seconds or lower max_tokens."
            )
            raise AttemptFailed(Attempt(error, False)) from None
        except requests.exceptions.ConnectionError as exc:
            if _not_sent(exc):
                raise AttemptFailed(Attempt(self._connection_error("cannot connect", exc), True)) from None
            error = UpstreamUnavailableError(
                "the connection was reset after the request was sent; not retried because the gateway "
                "may already have processed (and billed) it"
            )
            raise AttemptFailed(Attempt(error, False)) from None
        except requests.RequestException as exc:
            raise AttemptFailed(Attempt(UpstreamUnavailableError(self.redact(f"request failed: {gateway_words(exc)}")), False)) from None
        except (ValueError, UnicodeError, urllib3.exceptions.HTTPError) as exc:
            # urllib3 or the IDNA codec refusing the URL (a host label too long, ...): nothing was sent.
            error = UpstreamUnavailableError(
                self.redact(f"base_url cannot be used to connect ({gateway_words(exc, 200)}): check the base_url credential")
            )
            raise AttemptFailed(Attempt(error, False)) from None
        return HTTPResponse(response)

    def _connection_error(self, what: str, exc: Exception, *, timeout: bool = False) -> GatewayError:
        host = self.host
        detail = _root_cause(exc)
        if "Name or service not known" in detail or "NameResolution" in detail or "getaddrinfo" in detail:
            message = f"cannot resolve host '{host}': check the base_url credential (DNS lookup failed)"
        elif what.startswith("TLS") and any(word in detail for word in _NO_COMMON_VERSION):
            message = (
                f"TLS handshake with '{host}' failed: the gateway does not offer TLS {self.tls_min_version} or newer, "
                f"the oldest this plugin accepts (tls_min_version = {self.tls_min_version}; {detail}). "
                + ("Ask the gateway's operator to enable TLS 1.3, or set tls_min_version to 1.2" if self.tls_min_version == "1.3"
                   else "Ask the gateway's operator to enable TLS 1.2 or newer")
            )
        elif what.startswith("TLS"):
            message = f"TLS handshake with '{host}' failed ({detail}): check that base_url uses the right scheme (https vs http) and port"
        elif timeout:
            message = f"connecting to '{host}' timed out: the host is unreachable or a firewall drops the traffic"
        else:
            message = f"cannot connect to '{host}' ({detail}): check the base_url credential and that the gateway is up"
        cls = GatewayTimeoutError if timeout else UpstreamUnavailableError
        return cls(self.redact(message))


def _root_cause(exc: BaseException) -> str:
    seen = exc
    while True:
        inner = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
        if inner is None or inner is seen:
            break
        seen = inner
        if not isinstance(seen, Exception):
            break
    if isinstance(exc.args[0] if exc.args else None, urllib3.exceptions.MaxRetryError):
        reason = exc.args[0].reason
        if reason is not None:
            seen = reason
    return gateway_words(f"{type(seen).__name__}: {seen}", 300)


def _not_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the request never reached the gateway: DNS, refused, TLS or connect failures."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)
