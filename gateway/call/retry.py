"""When to try a call again, and how long to wait first.

Retried: 408, 409, 429, 500, 502, 503, 504, and connection failures that happened before the
request reached the gateway (DNS, refused, TLS handshake, connect timeout). Never retried: other
4xx, and failures after the request was sent without a streamed byte of content reaching us
(read timeout, reset): the gateway may already have run, and billed, the completion. A stream that
fails before any content was delivered is retried; once content is delivered, never.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    # A gateway asking for minutes is honoured only up to this, and never past the call's deadline.
    max_retry_after: float = 60.0
    jitter: float = 0.25  # +/- fraction applied to exponential backoff, to spread synchronized retries

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1

    @staticmethod
    def is_retryable_status(status: int) -> bool:
        return status in RETRYABLE_STATUSES

    def backoff(self, attempt: int) -> float:
        """Delay before attempt `attempt + 1` (attempt counts from 1) when the gateway gave no hint."""
        delay = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return max(0.0, delay * (1 + random.uniform(-self.jitter, self.jitter)))

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return self.backoff(attempt)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait as the gateway asked: `retry-after-ms` first, then `Retry-After` in seconds or
    as an HTTP date. None when absent or unparseable."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
