"""Which addresses the plugin may connect to for URLs that users and workflow authors choose, and a
connection that goes to exactly the address that was checked.

File links (`gateway.wire.file_fetch`) and webhooks (`gateway.wire.webhooks`) are URLs someone else typed. The
plugin runs inside the Dify network, next to Redis, Dify's API and the cloud's metadata service, so
such a URL must not reach them unless the administrator said so:

- link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254, 100.100.100.200
  ...) are never contacted, whatever the settings;
- public addresses are contacted;
- internal addresses (loopback, private, carrier-grade NAT, unique-local, anything not globally
  routable) only for an origin or network the administrator trusted (`dify_files_url`,
  `webhook_allowlist`).

The check runs after DNS resolution, on every connection (a redirect is a new connection), and the
socket is then opened to the checked IP itself while TLS and the Host header keep the name: a name
that resolves to a public address for the check and to 127.0.0.1 a moment later (DNS rebinding) cannot
slip through. Environment proxies are not used: through a proxy the check would see the proxy.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never contacted: link-local (where clouds put their metadata service), the metadata addresses that
# are not link-local, "this host" and multicast/broadcast, which are no HTTP server's address.
NEVER_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # IPv4 link-local: AWS, GCP, Azure, OpenStack metadata at 169.254.169.254
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "0.0.0.0/8",
        "::/128",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "ff00::/8",
    )
)
DEFAULT_PORTS = {"http": 80, "https": 443}


class AddressRefused(Exception):
    """The URL's address is not one the plugin may contact; `reason` says why, safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Origin:
    """scheme://host:port, as browsers compare origins (host lower-case, default port filled in)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        """The origin of an absolute http(s) URL; ValueError when it has none."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError("not an http(s) URL with a host")
        return cls(scheme, parts.hostname.lower().rstrip("."), parts.port or DEFAULT_PORTS[scheme])

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS.get(self.scheme) == self.port
        return f"{self.scheme}://{host}" + ("" if default else f":{self.port}")


@dataclass(frozen=True)
class AddressPolicy:
    """Where internal addresses are allowed: for these origins, and (any origin) inside these networks."""

    trusted_origins: tuple[Origin, ...] = ()
    trusted_networks: tuple[IPNetwork, ...] = field(default=())
    # Every address must be trusted, public ones too (webhooks over plain http: only where allowed).
    only_trusted: bool = False
    untrusted_reason: str = "it resolves to an internal address (loopback or private network)"

    def trusts(self, origin: Origin, ip: IPAddress | None = None) -> bool:
        if origin in self.trusted_origins:
            return True
        return ip is not None and any(ip in net for net in self.trusted_networks if net.version == ip.version)

    def refusal(self, origin: Origin, ip: IPAddress) -> str | None:
        """Why `ip` may not be contacted for `origin`, or None when it may."""
        ip = _embedded_ipv4(ip)
        if any(ip in net for net in NEVER_NETWORKS if net.version == ip.version):
            return "it resolves to a link-local or cloud metadata address, which is never contacted"
        if (self.only_trusted or is_internal(ip)) and not self.trusts(origin, ip):
            return self.untrusted_reason
        return None


def is_internal(ip: IPAddress) -> bool:
    """Not a public Internet address: loopback, private, carrier-grade NAT, unique-local, reserved..."""
    return not _embedded_ipv4(ip).is_global


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """An IPv6 address that carries an IPv4 one (::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d) reaches that
    IPv4 address: judge it as such."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal is itself), in the resolver's order."""
    literal = host.strip("[]")
    try:
        return [ipaddress.ip_address(literal.split("%", 1)[0])]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unreachable(f"the host name could not be resolved ({_gai_reason(exc)})") from None
    out: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    if not out:
        raise Unreachable("the host name resolves to no address")
    return out


def _gai_reason(exc: BaseException) -> str:
    not_found = (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5))
    return "no such host" if isinstance(exc, socket.gaierror) and exc.errno in not_found else type(exc).__name__


class Unreachable(Exception):
    """No connection could be made (DNS, refused, timeout); `reason` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def checked_addresses(origin: Origin, policy: AddressPolicy) -> list[IPAddress]:
    """The addresses to connect to for `origin`, all of them allowed; AddressRefused otherwise. A name
    with one forbidden address among allowed ones is refused whole: a DNS answer mixing the two is how
    rebinding attacks start."""
    addresses = resolve(origin.host, origin.port)
    for ip in addresses:
        reason = policy.refusal(origin, ip)
        if reason is not None:
            raise AddressRefused(reason)
    return addresses


class _PinnedMixin:
    """Opens the socket to an address checked by the policy, never to what a second lookup returns."""

    guard_policy: AddressPolicy
    guard_origin: Origin

    def _new_conn(self) -> socket.socket:  # urllib3's hook for making the socket
        addresses = checked_addresses(self.guard_origin, self.guard_policy)
        last: BaseException | None = None
        for ip in addresses:
            try:
                sock = urllib3.util.connection.create_connection(
                    (str(ip), self.guard_origin.port),
                    self.timeout,  # type: ignore[attr-defined]
                    socket_options=self.socket_options,  # type: ignore[attr-defined]
                )
            except TimeoutError:
                last = Unreachable("connect timeout")
                continue
            except OSError as exc:
                last = Unreachable(f"connection failed ({_os_reason(exc)})")
                continue
            return sock
        raise last or Unreachable("connection failed")


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    return type(exc).__name__


class PinnedHTTPConnection(_PinnedMixin, HTTPConnection):
    def __init__(self, *args: Any, guard_policy: AddressPolicy, guard_origin: Origin, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard_policy = guard_policy
        self.guard_origin = guard_origin


class PinnedHTTPSConnection(_PinnedMixin, HTTPSConnection):
    def __init__(self, *args: Any, guard_policy: AddressPolicy, guard_origin: Origin, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard_policy = guard_policy
        self.guard_origin = guard_origin


class _PinnedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = PinnedHTTPConnection


class _PinnedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = PinnedHTTPSConnection


@dataclass
class Exchange:
    """One request's answer, unread: read it with `read1`, close it when done."""

    response: urllib3.BaseHTTPResponse
    pool: urllib3.HTTPConnectionPool

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    def set_read_timeout(self, seconds: float) -> None:
        """The timeout of the next socket read (a total deadline shrinks it as time passes)."""
        sock = getattr(self.response.connection, "sock", None) if self.response.connection is not None else None
        if sock is not None:
            sock.settimeout(max(0.01, seconds))

    def read1(self, amount: int) -> bytes:
        """At most `amount` raw (still encoded) bytes from one socket read; b"" at the end."""
        return self.response.read1(amount, decode_content=False) or b""

    def close(self) -> None:
        try:
            self.response.close()
        finally:
            self.pool.close()


def open_url(
    method: str,
    url: str,
    policy: AddressPolicy,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    connect_timeout: float,
    read_timeout: float,
) -> Exchange:
    """Send one request to `url` (http or https) through a connection pinned to a checked address; no
    redirect is followed, nothing is decoded, no environment proxy is used. Raises AddressRefused when
    the address is not allowed (nothing was sent), Unreachable when no connection could be made,
    ValueError for a URL that is not absolute http(s), and urllib3's errors for what happens after."""
    origin = Origin.of(url)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    pool_class = _PinnedHTTPSPool if origin.scheme == "https" else _PinnedHTTPPool
    extra: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED", "ca_certs": certifi.where()} if origin.scheme == "https" else {}
    pool = pool_class(
        parts.hostname or origin.host,
        origin.port,
        maxsize=1,
        retries=False,
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        guard_policy=policy,
        guard_origin=origin,
        **extra,
    )
    try:
        response = pool.urlopen(
            method,
            target,
            body=body,
            headers=dict(headers or {}),
            redirect=False,
            retries=False,
            preload_content=False,
            decode_content=False,
            assert_same_host=False,
        )
    except BaseException:
        pool.close()
        raise
    return Exchange(response, pool)


__all__ = [
    "NEVER_NETWORKS",
    "AddressPolicy",
    "AddressRefused",
    "Exchange",
    "Origin",
    "Unreachable",
    "checked_addresses",
    "is_internal",
    "open_url",
    "resolve",
]
