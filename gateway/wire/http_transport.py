"""The real transport: a urllib3 keep-alive pool (direct, or through the proxy the environment names), connect
and read timeouts split, and every body read bounded by the call's deadline. Classifies what urllib3 raises.

It used to be a requests.Session; requests' per-call work (merging settings, cookie jars, preparing and
re-parsing the URL, wrapping the response) was most of the plugin's CPU per call, so the request is now
built here once and handed to urllib3 the way requests' HTTPAdapter did: same headers, same proxy, CA
bundle and TLS floor, same messages for every failure."""

from __future__ import annotations

import os
import select
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import requests
import urllib3
from requests.adapters import SOCKSProxyManager
from requests.auth import _basic_auth_str
from requests.models import PreparedRequest
from requests.utils import (
    DEFAULT_ACCEPT_ENCODING,
    check_header_validity,
    get_auth_from_url,
    prepend_scheme_if_needed,
    select_proxy,
    urldefragauth,
)
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from gateway.config import GatewayConfig
from gateway.errors import GatewayError, GatewayTimeoutError, Redactor, UpstreamUnavailableError, gateway_words
from gateway.wire.transport import Attempt, AttemptFailed, BodyReadError, Deadline

USER_AGENT = "holysheep-dify-plugin/0.1.0"
DEFAULT_POOL_SIZE = 16
_READ_ERRORS = (urllib3.exceptions.HTTPError, OSError)
TLS_MINIMUM = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
# What OpenSSL says when the two sides share no TLS version.
_NO_COMMON_VERSION = ("PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE", "no protocols available", "WRONG_SSL_VERSION")
# How many origins a pool manager keeps pools for (one is used: the gateway, or the proxy).
_POOL_CONNECTIONS = 4
# Failures once the request may have reached the gateway (requests called them a ConnectionError that was
# not a failure to connect): never retried. A proxy failing counts too, as it did with requests.
_AFTER_SENT = (ProtocolError, ProxyError, ClosedPoolError)


def _os_poll() -> Callable[[], Any]:
    """The operating system's poll, also where gevent has monkey-patched `select` (the Dify runtime)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey.get_original("select", "poll") if monkey is not None else select.poll  # type: ignore[no-any-return]


# Found once: before gevent patches `select`, select.poll is still the OS's, and after, gevent keeps the original.
_OS_POLL = _os_poll()


class _KeptAliveCheck:
    """urllib3 checks a kept-alive connection before reusing it by polling its socket with a zero timeout.
    Under gevent's patched `select` that poll goes through the hub: about 80 µs a call, a tenth of the
    plugin's CPU per batch call (py-spy, `./dev bench profile batch`). The OS's own poll, with a zero
    timeout, asks the same question of the same socket without waiting, so nothing needs the hub."""

    sock: Any

    @property
    def is_connected(self) -> bool:
        sock = self.sock
        if sock is None:
            return False
        poller = _OS_POLL()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)  # readable while idle: closed by the gateway, or bytes nobody asked for


class _HTTPConnection(_KeptAliveCheck, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_KeptAliveCheck, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class HTTPResponse:
    __slots__ = ("_raw", "headers", "reason", "status")

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._raw = response
        self.status = response.status
        self.reason = response.reason or ""
        self.headers = response.headers  # case-insensitive; a repeated header reads as "a, b" as with requests

    def read_chunk(self, deadline: Deadline, size: int) -> bytes:
        # The read timeout applies per read and was fixed when the request was sent, so a gateway
        # trickling bytes could outlive the deadline: the next socket read is capped at the time left.
        sock = getattr(getattr(self._raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(max(0.001, deadline.remaining))
        try:
            return self._raw.read1(size, decode_content=True)  # what has arrived, not a full buffer
        except _READ_ERRORS as exc:
            timed_out = isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError)
            raise BodyReadError(timed_out) from None

    def close(self) -> None:
        # What requests' Response.close did: a body read to its end already gave the connection back to
        # the pool (urllib3 does so at the end of the body); otherwise the connection is closed, not reused.
        self._raw.close()
        self._raw.release_conn()


class HTTPTransport:
    def __init__(self, config: GatewayConfig, redact: Redactor, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.base_url = config.base_url
        self.host = config.base_url.split("/")[2]
        self.connect_timeout = config.connect_timeout_seconds
        self.tls_min_version = config.tls_min_version
        self.redact = redact
        self._pool_size = 0
        self._pool_lock = threading.Lock()
        self._manager: urllib3.PoolManager | None = None
        self._pool: urllib3.HTTPConnectionPool | None = None
        # The environment is read once, not per call (requests' trust_env re-read it, and ~/.netrc, on
        # every call: a tenth of the client's CPU per call, measured; a netrc entry would also have
        # replaced our Authorization header): HTTP(S)_PROXY/NO_PROXY and the CA bundle variables.
        self.proxies: dict[str, str] = requests.utils.get_environ_proxies(config.base_url)
        self.verify: str | bool = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.default_headers = {
            "User-Agent": USER_AGENT,
            "Accept-Encoding": DEFAULT_ACCEPT_ENCODING,
            "Accept": "application/json, text/event-stream",
            "Connection": "keep-alive",
            "Authorization": f"Bearer {config.api_key}",
            "Content-Type": "application/json",
        }
        # No cookie jar: the gateway is an API that needs none, and requests' jar cost CPU on every call.
        self._refusal: Exception | None = None  # what requests raised on every call with these settings
        self._prepare(config.base_url)
        self.ensure_pool(pool_size)

    def _prepare(self, base_url: str) -> None:
        """Everything requests worked out again on every call, once: the URL as it sent it, the proxy, the
        origin's pool key, the certificates to trust."""
        try:
            prepared = PreparedRequest()
            prepared.prepare_url(base_url, None)
        except requests.RequestException:
            self._url = None  # send() prepares base_url + path to raise what requests raised
            return
        url = str(prepared.url)
        self._url = url
        self._full_url = urldefragauth(url)  # what an HTTP proxy is sent: the URL without user name or password
        parsed = urlparse(url)
        self._origin = {"scheme": parsed.scheme.lower(), "host": parsed.hostname, "port": parsed.port}
        self._path_prefix = url[len(parsed.scheme) + 3 + len(parsed.netloc) :]  # requests' path_url, without the call's path
        # A user name and password in the URL became Basic auth, replacing the key (the config refuses them).
        username, password = get_auth_from_url(url)
        if username or password:
            self.default_headers["Authorization"] = _basic_auth_str(username, password)
        self._default_names = {name.lower(): name for name in self.default_headers}
        for header in self.default_headers.items():
            try:
                check_header_validity(header)
            except requests.RequestException as exc:
                self._refusal = exc
        self.proxy = select_proxy(url, self.proxies)
        self._forward_full_url = False
        if self.proxy:
            self.proxy = prepend_scheme_if_needed(self.proxy, "http")
            if not urllib3.util.parse_url(self.proxy).host:
                self._refusal = self._refusal or requests.exceptions.InvalidProxyURL(
                    "Please check proxy URL. It is malformed and could be missing the host."
                )
            # An http:// gateway through an HTTP proxy gets the whole URL; https:// goes through a CONNECT tunnel.
            self._forward_full_url = self._origin["scheme"] != "https" and not self.proxy.lower().startswith("socks")
        self._tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED", "ssl_minimum_version": TLS_MINIMUM[self.tls_min_version]}
        # verify=True in requests meant certifi's bundle (requests.certs.where()), not the system store.
        self._ca = self.verify if isinstance(self.verify, str) else requests.certs.where()
        self._tls["ca_cert_dir" if os.path.isdir(self._ca) else "ca_certs"] = self._ca
        self._missing_ca = self._origin["scheme"] == "https" and not os.path.exists(self._ca)

    def ensure_pool(self, size: int) -> None:
        """Grows the keep-alive pool so `size` parallel calls each get a connection."""
        with self._pool_lock:
            if size <= self._pool_size:
                return
            self._pool_size = size
            if self._url is None or self._refusal is not None:  # every call fails before it needs a pool
                return
            kwargs: dict[str, Any] = {"num_pools": _POOL_CONNECTIONS, "maxsize": size, "block": False, **self._tls}
            try:
                if not self.proxy:
                    manager: urllib3.PoolManager = urllib3.PoolManager(**kwargs)
                elif self.proxy.lower().startswith("socks"):
                    username, password = get_auth_from_url(self.proxy)
                    manager = SOCKSProxyManager(self.proxy, username=username, password=password, **kwargs)
                else:
                    username, password = get_auth_from_url(self.proxy)
                    proxy_headers = {"Proxy-Authorization": _basic_auth_str(username, password)} if username else {}
                    manager = urllib3.proxy_from_url(self.proxy, proxy_headers=proxy_headers, **kwargs)
            except urllib3.exceptions.LocationValueError as exc:  # a proxy URL urllib3 refuses (ftp://...)
                self._refusal = requests.exceptions.InvalidURL(exc)
                return
            except requests.RequestException as exc:  # SOCKS without PySocks
                self._refusal = exc
                return
            if not self.proxy or not self.proxy.lower().startswith("socks"):  # SOCKS pools keep urllib3's own check
                manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
            # The old pool is left to the calls still reading from it (as requests' replaced adapter was).
            self._manager = manager
            self._pool = None

    @property
    def pool_size(self) -> int:
        return self._pool_size

    def close(self) -> None:
        if self._manager is not None:
            self._manager.clear()

    def _connection_pool(self) -> urllib3.HTTPConnectionPool:
        pool = self._pool
        if pool is None or pool.pool is None:  # not made yet, or closed by close(): a new one, as requests did
            pool = self._pool = self._manager.connection_from_host(**self._origin)  # type: ignore[union-attr]
        return pool

    def _headers(self, body: bytes | None, method: str, headers: dict[str, str] | None) -> dict[str, str]:
        """The headers requests sent: ours, the call's (one of ours named again, whatever its case, is
        replaced where it stands), then the body's length."""
        merged = self.default_headers.copy()
        if headers:
            for name, value in headers.items():
                mine = self._default_names.get(name.lower())
                if mine is None or name == mine:
                    merged[name] = value
                else:  # requests kept the header's place and took the call's spelling of its name
                    merged = {(name if key == mine else key): (value if key == mine else v) for key, v in merged.items()}
            for header in list(merged.items()):
                if header[1] is None:  # requests dropped a header set to None
                    del merged[header[0]]
                elif header[0] in headers:
                    check_header_validity(header)  # what requests refused (a line break in a value, ...)
        if body is not None:
            merged["Content-Length"] = str(len(body))
        elif method not in ("GET", "HEAD"):
            merged["Content-Length"] = "0"
        return merged

    def send(self, method: str, path: str, body: bytes | None, *, timeout: float, headers: dict[str, str] | None = None) -> HTTPResponse:
        try:
            if self._url is None:
                PreparedRequest().prepare_url(self.base_url + path, None)  # raises what requests raised
            body = body or None  # requests sent no body for b""
            request_headers = self._headers(body, method, headers)
            if self._refusal is not None:
                raise self._refusal
            if self._missing_ca and not os.path.exists(self._ca):
                # requests raised this OSError out of send() itself: kept, so nothing else changes with it.
                raise OSError(f"Could not find a suitable TLS CA certificate bundle, invalid path: {self._ca}")
            response = self._connection_pool().urlopen(
                method,
                self._full_url + path if self._forward_full_url else self._path_prefix + path,
                body=body,
                headers=request_headers,
                # retries=False: our RetryPolicy decides; urllib3 retrying too would stack retries (LiteLLM's 3x bug).
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=urllib3.Timeout(connect=min(self.connect_timeout, timeout), read=timeout),
                preload_content=False,  # streamed: read_chunk reads the body
                decode_content=False,  # read_chunk decodes
                chunked=False,
            )
        except SSLError as exc:
            # Not retried: certificate and protocol failures do not clear up, and a TLS error while reading
            # the response would mean a second, billed, completion.
            raise AttemptFailed(Attempt(self._connection_error("TLS handshake failed", exc), False)) from None
        except NewConnectionError as exc:  # refused, DNS (a subclass of ConnectTimeoutError, so first)
            raise AttemptFailed(Attempt(self._connection_error("cannot connect", exc), True)) from None
        except ConnectTimeoutError as exc:
            raise AttemptFailed(Attempt(self._connection_error("connecting timed out", exc, timeout=True), True)) from None
        except ReadTimeoutError:
            error = GatewayTimeoutError(
                f"no response within {timeout:.0f}s; not retried because the gateway may already have "
                "processed (and billed) the request. Raise timeout_seconds or lower max_tokens."
            )
            raise AttemptFailed(Attempt(error, False)) from None
        except _AFTER_SENT:
            error = UpstreamUnavailableError(
                "the connection was reset after the request was sent; not retried because the gateway "
                "may already have processed (and billed) it"
            )
            raise AttemptFailed(Attempt(error, False)) from None
        except (requests.RequestException, urllib3.exceptions.InvalidHeader) as exc:
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
    """What failed, as `Type: text`: urllib3's own error, the one requests wrapped as a MaxRetryError's reason."""
    return gateway_words(f"{type(exc).__name__}: {exc}", 300)
