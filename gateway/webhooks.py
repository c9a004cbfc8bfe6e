"""Posting a webhook: one JSON body, a timeout, retries with backoff on 429 and 5xx, and a result that is
never an exception.

This is the only HTTP client code outside the gateway's chat transport. It knows nothing about approval
or vendors: the caller gives the URL, the body, the headers and, optionally, ``accept``, which reads a
2xx answer the way the vendor means it (Feishu, DingTalk and WeCom answer 200 with an error code in the
body). Signing is the caller's (``approval.notify``): it happens before this module sees the request.

What the result carries is safe to show: the HTTP status, how many attempts were made, a short reason.
Never the URL (webhook URLs hold tokens: Slack's path, WeCom's ``key``, DingTalk's ``access_token``),
never the headers (signatures), never the body. Exceptions from requests are described by their class,
because their messages repeat the URL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import requests

from gateway.retry import RetryPolicy, parse_retry_after

# The result of reading an answer: delivered, worth another attempt, or a definite failure.
Verdict = tuple[Literal["ok", "retry", "fail"], str]
Accept = Callable[[int, bytes], Verdict]

DEFAULT_RETRY = RetryPolicy(max_retries=2, base_delay=0.25, max_delay=4.0, max_retry_after=10.0, jitter=0.1)
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "holysheep-dify-plugin/webhooks"

_session_lock = threading.Lock()
_session: requests.Session | None = None


def _shared_session() -> requests.Session:
    global _session
    with _session_lock:
        if _session is None:
            session = requests.Session()
            session.trust_env = True  # proxies from the environment, as the gateway client
            _session = session
        return _session


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
    session: requests.Session | None = None,
) -> DeliveryResult:
    """POST ``body`` (JSON) to ``url``; never raises.

    ``deadline`` is a ``time.monotonic()`` instant after which no attempt starts and no wait runs past.
    ``prepare`` (optional) rebuilds (url, body, headers) before every attempt: vendor signatures carry a
    timestamp, and a retry should be signed afresh. Redirects are not followed (a webhook that redirects is
    misconfigured, and following one would resend the body elsewhere).
    """
    judge = accept or default_accept
    http = session or _shared_session()
    last_status: int | None = None
    reason = "not attempted"
    attempt = 0
    for attempt in range(1, retry.max_attempts + 1):
        if deadline is not None and time.monotonic() >= deadline:
            reason = "deadline reached before the attempt" if attempt == 1 else f"{reason}; deadline reached"
            attempt -= 1
            break
        if prepare is not None:
            url, body, headers = prepare()
        send_headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT, **(headers or {})}
        read = read_timeout
        if deadline is not None:
            read = max(0.5, min(read_timeout, deadline - time.monotonic()))
        retry_after: float | None = None
        try:
            response = http.post(
                url, data=body, headers=send_headers, timeout=(min(connect_timeout, read), read), allow_redirects=False, stream=True
            )
            try:
                content = response.raw.read(MAX_RESPONSE_BYTES, decode_content=True) or b""
            finally:
                response.close()
            last_status = response.status_code
            verdict, reason = judge(response.status_code, content)
            if verdict == "ok":
                return DeliveryResult(True, attempt, last_status, "ok")
            if verdict == "fail":
                return DeliveryResult(False, attempt, last_status, reason)
            retry_after = parse_retry_after(dict(response.headers))
        except requests.exceptions.ConnectTimeout:
            reason = "connect timeout"
        except requests.exceptions.ReadTimeout:
            reason = "no answer in time (read timeout)"
        except requests.exceptions.SSLError:
            return DeliveryResult(False, attempt, None, "TLS error (certificate or handshake)")
        except requests.exceptions.ConnectionError:
            reason = "connection failed (refused, reset or DNS)"
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
            return DeliveryResult(False, attempt, None, "the webhook URL is not a valid http(s) URL")
        except Exception as exc:  # never into the caller
            return DeliveryResult(False, attempt, last_status, f"unexpected error ({type(exc).__name__})")
        if attempt >= retry.max_attempts:
            break
        wait = retry.delay(attempt, retry_after)
        if deadline is not None and time.monotonic() + wait >= deadline:
            reason = f"{reason}; no time left for another attempt"
            break
        time.sleep(wait)
    return DeliveryResult(False, attempt, last_status, f"{reason} after {attempt} attempt{'s' if attempt != 1 else ''}")


__all__ = ["DEFAULT_RETRY", "Accept", "DeliveryResult", "Verdict", "default_accept", "post_json"]
