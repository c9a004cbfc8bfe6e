"""Posting a webhook: one JSON body, a timeout, retries with backoff on 429 and 5xx, and a result that is
never an exception.

It knows nothing about approval
or vendors: the caller gives the URL, the body, the headers and, optionally, ``accept``, which reads a
2xx answer the way the vendor means it (Feishu, DingTalk and WeCom answer 200 with an error code in the
body). Signing is the caller's (``approval.webhook_formats``): it happens before this module sees the request.

What the result carries is safe to show: the HTTP status, how many attempts were made, a short reason.
Never the URL (webhook URLs hold tokens: Slack's path, WeCom's ``key``, DingTalk's ``access_token``),
never the headers (signatures), never the body. Exceptions from urllib3 are described by their class,
because their messages repeat the URL.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from urllib3.exceptions import HTTPError, ReadTimeoutError, SSLError

from gateway.call.retry import RetryPolicy, parse_retry_after
from gateway.wire.net_guard import AddressPolicy, AddressRefused, IPNetwork, Origin, Unreachable, open_url

# The result of reading an answer: delivered, worth another attempt, or a definite failure.
Verdict = tuple[Literal["ok", "retry", "fail"], str]
Accept = Callable[[int, bytes], Verdict]

DEFAULT_RETRY = RetryPolicy(max_retries=2, base_delay=0.25, max_delay=4.0, max_retry_after=10.0, jitter=0.1)
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "holysheep-dify-plugin/webhooks"


@dataclass(frozen=True)
class WebhookAllowlist:
    """The administrator's `webhook_allowlist`: internal targets webhooks may reach, and the only ones
    plain http may reach. Empty: public https targets only."""

    origins: tuple[Origin, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    def policy_for(self, url: str) -> AddressPolicy:
        """https: internal addresses only where allowed. http: every address must be allowed (a public
        http target too: the body carries approve/reject links and signatures)."""
        if url.strip().lower().startswith("http://"):
            return AddressPolicy(
                self.origins, self.networks, only_trusted=True,
                untrusted_reason="plain http is allowed only for targets webhook_allowlist names (use https)",
            )
        return AddressPolicy(
            self.origins, self.networks,
            untrusted_reason="it resolves to an internal address (loopback or private network) that webhook_allowlist does not name",
        )


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    attempts: int
    http_status: int | None
    reason: str  # "ok" or why not, without URL, header or body

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"delivered": self.delivered, "attempts": self.attempts, "reason": self.reason}
        if self.http_status is not None:
            out["http_status"] = self.http_status
        return out


def default_accept(status: int, _body: bytes) -> Verdict:
    """2xx delivered; 408, 409, 429 and 5xx worth retrying; any other status a failure."""
    if 200 <= status < 300:
        return "ok", "ok"
    if RetryPolicy.is_retryable_status(status):
        return "retry", f"HTTP {status}"
    return "fail", f"HTTP {status}"


def post_json(
    url: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    accept: Accept | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    deadline: float | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    prepare: Callable[[], tuple[str, bytes, Mapping[str, str]]] | None = None,
    allowlist: WebhookAllowlist | None = None,
) -> DeliveryResult:
    """POST ``body`` (JSON) to ``url``; never raises.

    ``deadline`` is a ``time.monotonic()`` instant after which no attempt starts and no wait runs past.
    ``prepare`` (optional) rebuilds (url, body, headers) before every attempt: vendor signatures carry a
    timestamp, and a retry should be signed afresh. Redirects are not followed (a webhook that redirects is
    misconfigured, and following one would resend the body elsewhere). The target's address is checked
    after resolution and the connection pinned to it (``gateway.wire.net_guard``): internal targets and plain
    http only where ``allowlist`` says; a refused target is never contacted, so nothing about it (no
    status, no timing of an answer) comes back.
    """
    judge = accept or default_accept
    targets = allowlist or WebhookAllowlist()
    state = _Delivery()
    attempt = 0
    for attempt in range(1, retry.max_attempts + 1):
        if deadline is not None and time.monotonic() >= deadline:
            state.reason = "deadline reached before the attempt" if attempt == 1 else f"{state.reason}; deadline reached"
            attempt -= 1
            break
        if prepare is not None:
            url, body, headers = prepare()
        send_headers = {
            "Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {}),
        }
        read = read_timeout
        if deadline is not None:
            read = max(0.5, min(read_timeout, deadline - time.monotonic()))
        final, retry_after = _attempt(state, attempt, url, body, send_headers, judge, targets, min(connect_timeout, read), read)
        if final is not None:
            return final
        if attempt >= retry.max_attempts:
            break
        wait = retry.delay(attempt, retry_after)
        if deadline is not None and time.monotonic() + wait >= deadline:
            state.reason = f"{state.reason}; no time left for another attempt"
            break
        time.sleep(wait)
    return DeliveryResult(False, attempt, state.last_status, f"{state.reason} after {attempt} attempt{'s' if attempt != 1 else ''}")


@dataclass(slots=True)
class _Delivery:
    """What the attempts so far left: the last HTTP status answered, and why the last attempt did not deliver."""

    last_status: int | None = None
    reason: str = "not attempted"


def _attempt(
    state: _Delivery,
    attempt: int,
    url: str,
    body: bytes,
    headers: dict[str, str],
    judge: Accept,
    targets: WebhookAllowlist,
    connect_timeout: float,
    read_timeout: float,
) -> tuple[DeliveryResult | None, float | None]:
    """One POST: (the delivery's result when this attempt ends it, else None; the answer's Retry-After)."""
    try:
        exchange = open_url(
            "POST", url, targets.policy_for(url), body=body, headers=headers, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
        try:
            content = _answer(exchange.response)
            status, answer_headers = exchange.status, dict(exchange.headers)
        finally:
            exchange.close()
        state.last_status = status
        verdict, state.reason = judge(status, content)
        if verdict == "ok":
            return DeliveryResult(True, attempt, state.last_status, "ok"), None
        if verdict == "fail":
            return DeliveryResult(False, attempt, state.last_status, state.reason), None
        return None, parse_retry_after(answer_headers)
    except AddressRefused as exc:
        return DeliveryResult(False, attempt - 1, None, f"refused: the webhook target was not contacted because {exc.reason}"), None
    except Unreachable as exc:
        state.reason = "connect timeout" if exc.reason == "connect timeout" else f"connection failed ({exc.reason})"
    except ReadTimeoutError:
        state.reason = "no answer in time (read timeout)"
    except SSLError:
        return DeliveryResult(False, attempt, None, "TLS error (certificate or handshake)"), None
    except ValueError:
        return DeliveryResult(False, attempt, None, "the webhook URL is not a valid http(s) URL"), None
    except (HTTPError, OSError):
        state.reason = "connection failed (reset or broken)"
    except Exception as exc:  # never into the caller
        return DeliveryResult(False, attempt, state.last_status, f"unexpected error ({type(exc).__name__})"), None
    return None, None


def _answer(response: object) -> bytes:
    """At most MAX_RESPONSE_BYTES of the answer (inflated, at most that much, if it came compressed anyway)."""
    raw = response.read(MAX_RESPONSE_BYTES, decode_content=False) or b""  # type: ignore[attr-defined]
    encoding = str(response.headers.get("Content-Encoding") or "").strip().lower()  # type: ignore[attr-defined]
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            return zlib.decompressobj(47).decompress(raw, MAX_RESPONSE_BYTES)  # 47: gzip or zlib header
        except zlib.error:
            return b""
    return raw


def poster(allowlist: WebhookAllowlist) -> Callable[..., DeliveryResult]:
    """``post_json`` bound to the administrator's allowlist, for callers that take a ``post`` function."""
    return functools.partial(post_json, allowlist=allowlist)


__all__ = ["DEFAULT_RETRY", "Accept", "DeliveryResult", "Verdict", "WebhookAllowlist", "default_accept", "post_json", "poster"]
