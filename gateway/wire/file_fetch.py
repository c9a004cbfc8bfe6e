"""Downloading a tool's `file` parameter: Dify's link, checked, bounded and never repeated.

Dify hands a plugin a link, not bytes (`File.to_plugin_parameter`): for an upload or a tool's file, a
signed link on INTERNAL_FILES_URL (or FILES_URL); for a `remote_url` file, whatever URL the end user
typed. The SDK's `File.blob` is a plain GET with neither an address check nor a size limit, so this
module replaces it:

- addresses are checked after DNS resolution on every connection and redirect (`gateway.wire.net_guard`):
  internal addresses only for Dify's file server, link-local and metadata addresses never;
- Dify's file server is the `dify_files_url` credential's origin. Left empty, a link with no host at
  all (`/files/...`: Dify's FILES_URL and INTERNAL_FILES_URL are both empty, as in a default
  docker-compose `.env`) is fetched from `http://api:5001`, the docker-compose API service, and so is
  an absolute link to that origin under `/files/`, the routes Dify serves publicly through nginx
  anyway. A remote URL can never be relative (Dify requires it to start with "http"), so no other
  internal address opens without a setting;
- the body is read in chunks with a byte cap counted before and after decompression (gzip and deflate
  are inflated here, at most a chunk at a time), a total deadline and a per-read timeout;
- every refusal says what happened, names the origin at most (never the path or query: Dify's links
  carry signatures) and never quotes a byte of what came back.
"""

from __future__ import annotations

import io
import time
import zlib
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

from urllib3.exceptions import HTTPError, ProtocolError, ReadTimeoutError, SSLError

from gateway.wire.net_guard import AddressPolicy, AddressRefused, Exchange, Origin, Unreachable, open_url
from untrusted import quote

DEFAULT_DIFY_FILES_ORIGIN = Origin("http", "api", 5001)  # docker-compose: the `api` service
DIFY_FILES_PATH = "/files/"
DEADLINE_SECONDS = 30.0
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 15.0  # no byte for this long ends the download before the deadline does
MAX_REDIRECTS = 5
CHUNK_BYTES = 64 * 1024
USER_AGENT = "holysheep-dify-plugin/files"
_REDIRECTS = {301, 302, 303, 307, 308}
_ENCODINGS = {"": "", "identity": "", "gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


class FetchError(Exception):
    """The file could not be used; the message says what happened and is safe to show."""


def fetch_file(
    url: object,
    *,
    files_origin: Origin | None,
    max_bytes: int,
    deadline_seconds: float = DEADLINE_SECONDS,
) -> bytes:
    """The file's bytes (decompressed when sent compressed), at most `max_bytes`, within the deadline."""
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise FetchError("Dify sent no link for it (not a file link)")
    dify_link = text.startswith("/")
    if dify_link:
        # Only Dify writes links without a host: its FILES_URL and INTERNAL_FILES_URL are empty.
        if text.startswith("//"):
            raise FetchError("the link is not a file link (no scheme)")
        text = str(files_origin or DEFAULT_DIFY_FILES_ORIGIN) + text
    deadline = time.monotonic() + deadline_seconds
    current = text
    for hop in range(MAX_REDIRECTS + 1):
        origin = _origin(current, first=hop == 0)
        policy = _policy(origin, urlsplit(current).path, files_origin)
        exchange = _open(current, origin, policy, deadline, deadline_seconds, dify_link=dify_link, files_origin=files_origin, redirected=hop > 0)
        try:
            if exchange.status in _REDIRECTS:
                location = exchange.headers.get("Location")
                if not location:
                    raise FetchError(f"{origin} answered HTTP {exchange.status} (a redirect) without saying where to")
                current = urljoin(current, location)
                continue
            if exchange.status != 200:
                raise FetchError(_status_problem(exchange.status, origin, dify_link or _is_dify(origin, current, files_origin)))
            return _read_body(exchange, origin, max_bytes, deadline, deadline_seconds)
        finally:
            exchange.close()
    raise FetchError(f"the link was redirected more than {MAX_REDIRECTS} times (last to {_origin_text(current)})")


def _origin(url: str, *, first: bool) -> Origin:
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    where = "the link" if first else "the link redirected to a URL that"
    if scheme not in ("http", "https"):
        shown = f"scheme {quote(scheme, 20)}" if scheme else "no scheme"
        raise FetchError(f"{where} is not an http(s) file link ({shown})" if first else f"{where} is not http(s) ({shown}): redirect refused")
    try:
        return Origin.of(url)
    except ValueError:
        raise FetchError(f"{where} has no valid host (not a file link)") from None


def _policy(origin: Origin, path: str, files_origin: Origin | None) -> AddressPolicy:
    """Internal addresses only for Dify's file server: the configured origin, or without one the
    docker-compose API service, and then only for its /files/ routes."""
    if files_origin is not None:
        return AddressPolicy(trusted_origins=(files_origin,))
    if origin == DEFAULT_DIFY_FILES_ORIGIN and path.startswith(DIFY_FILES_PATH):
        return AddressPolicy(trusted_origins=(DEFAULT_DIFY_FILES_ORIGIN,))
    return AddressPolicy()


def _is_dify(origin: Origin, url: str, files_origin: Origin | None) -> bool:
    if files_origin is not None:
        return origin == files_origin
    return origin == DEFAULT_DIFY_FILES_ORIGIN and urlsplit(url).path.startswith(DIFY_FILES_PATH)


def _open(
    url: str, origin: Origin, policy: AddressPolicy, deadline: float, deadline_seconds: float, *,
    dify_link: bool, files_origin: Origin | None, redirected: bool,
) -> Exchange:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(f"too slow: the download did not finish within {deadline_seconds:.0f} s (redirects included)")
    try:
        return open_url(
            "GET",
            url,
            policy,
            headers={"Accept-Encoding": "gzip, deflate", "User-Agent": USER_AGENT, "Accept": "*/*"},
            connect_timeout=min(CONNECT_TIMEOUT, left),
            read_timeout=min(READ_TIMEOUT, left),
        )
    except AddressRefused as exc:
        what = "redirect refused: the new location" if redirected else "refused: the link"
        hint = "" if redirected or files_origin is not None else (
            "; if this is Dify's own file server, set the provider credential dify_files_url to that origin"
        )
        raise FetchError(f"{what} ({origin}) was not contacted because {exc.reason}{hint}") from None
    except Unreachable as exc:
        raise FetchError(_unreachable(origin, exc.reason, dify_link=dify_link, files_origin=files_origin)) from None
    except SSLError:
        raise FetchError(f"TLS error with {origin} (certificate or handshake)") from None
    except ReadTimeoutError:
        raise FetchError(f"too slow: {origin} sent no answer within {min(READ_TIMEOUT, left):.0f} s") from None
    except (HTTPError, OSError) as exc:
        raise FetchError(f"the connection to {origin} failed ({type(exc).__name__})") from None


def _unreachable(origin: Origin, reason: str, *, dify_link: bool, files_origin: Origin | None) -> str:
    text = f"could not connect to {origin}: {reason}"
    if dify_link and files_origin is None:
        # A real Dify-file problem: the link had no host, and the docker-compose default did not answer.
        return (
            f"{text}. Dify's file link has no host because FILES_URL and INTERNAL_FILES_URL are empty in Dify's .env: "
            f"set INTERNAL_FILES_URL (e.g. http://api:5001) there, or the provider credential dify_files_url to the address "
            "at which this plugin reaches Dify's API"
        )
    if files_origin is not None and origin == files_origin:
        return f"{text}. This is the dify_files_url origin: check that Dify's API answers there from the plugin's network"
    return text


def _status_problem(status: int, origin: Origin, dify: bool) -> str:
    text = f"{origin} answered HTTP {status}"
    if dify and status in (401, 403):
        return f"{text}: Dify refused the signed link (it expires after FILES_ACCESS_TIMEOUT, 300 s by default): run the workflow again"
    if dify and status == 404:
        return f"{text}: Dify no longer has this file: upload it again"
    return f"{text} instead of the file"


def _origin_text(url: str) -> str:
    try:
        return str(Origin.of(url))
    except ValueError:
        return "a URL that is not http(s)"


def _read_body(exchange: Exchange, origin: Origin, max_bytes: int, deadline: float, deadline_seconds: float) -> bytes:
    encoding_header = (exchange.headers.get("Content-Encoding") or "").strip().lower()
    if encoding_header not in _ENCODINGS:
        raise FetchError(f"{origin} sent the file compressed as {quote(encoding_header, 30)}, which is not read (gzip and deflate are)")
    declared = exchange.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise FetchError(f"too big: the file is {int(declared)} bytes; at most {max_bytes} bytes ({max_bytes // 2**20} MiB) are read")
    decoder = _Decoder(_ENCODINGS[encoding_header])
    out = io.BytesIO()
    raw = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError(f"too slow: the download did not finish within {deadline_seconds:.0f} s ({raw} bytes received)")
        exchange.set_read_timeout(min(READ_TIMEOUT, left))
        try:
            chunk = exchange.read1(CHUNK_BYTES)
        except (ReadTimeoutError, TimeoutError):
            if deadline - time.monotonic() <= 0:
                raise FetchError(f"too slow: the download did not finish within {deadline_seconds:.0f} s ({raw} bytes received)") from None
            raise FetchError(f"too slow: {origin} sent nothing for {READ_TIMEOUT:.0f} s ({raw} bytes received)") from None
        except (ProtocolError, HTTPError, OSError) as exc:
            raise FetchError(f"the connection to {origin} broke after {raw} bytes ({type(exc).__name__})") from None
        if not chunk:
            break
        raw += len(chunk)
        if raw > max_bytes:
            raise FetchError(f"too big: more than {max_bytes} bytes ({max_bytes // 2**20} MiB) were sent; at most that is read")
        for piece in decoder.feed(chunk):
            if out.tell() + len(piece) > max_bytes:
                raise FetchError(
                    f"too big: the file unpacks to more than {max_bytes} bytes ({max_bytes // 2**20} MiB) from {raw} compressed bytes; "
                    "at most that is read"
                )
            out.write(piece)
    if not decoder.finished():
        raise FetchError(f"{origin} sent a compressed body that ends early (truncated)")
    return out.getvalue()


class _Decoder:
    """gzip (several members too) or deflate (zlib-wrapped or raw), inflated at most CHUNK_BYTES at a
    time: a gzip bomb never gets more than one chunk ahead of the byte count."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._inflate = self._new()
        self._raw_tried = False
        self._fed = False

    def _new(self) -> zlib._Decompress | None:
        if self.encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self.encoding == "deflate":
            return zlib.decompressobj(zlib.MAX_WBITS)
        return None

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._inflate is None:
            yield data
            return
        pending = data
        while pending:
            try:
                piece = self._inflate.decompress(pending, CHUNK_BYTES)
            except zlib.error:
                if self.encoding == "deflate" and not self._fed and not self._raw_tried:
                    # Some servers send raw deflate for "deflate": try that once, from the start.
                    self._raw_tried = True
                    self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise FetchError("the compressed body is corrupt (it cannot be inflated)") from None
            self._fed = True
            if piece:
                yield piece
            if self._inflate.eof:
                pending = self._inflate.unused_data
                if pending and self.encoding == "gzip":
                    self._inflate = self._new()  # the next gzip member
                    continue
                return
            pending = self._inflate.unconsumed_tail

    def finished(self) -> bool:
        return self._inflate is None or self._inflate.eof or not self._fed


__all__ = ["DEFAULT_DIFY_FILES_ORIGIN", "FetchError", "fetch_file"]
