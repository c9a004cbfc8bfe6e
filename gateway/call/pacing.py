"""Adaptive pacing: without a configured rpm_limit, the gateway's own rate-limit headers set the pace.

OpenAI-compatible gateways tell each caller its budget in every answer:
`x-ratelimit-limit-requests` (the budget of a window), `x-ratelimit-remaining-requests` (what is left of
it) and `x-ratelimit-reset-requests` (when it is whole again: `1s`, `6m0s`, `250ms` or seconds). The
pacer of one gateway key follows them:

1. **Cautious start**: until the gateway has answered once, one request at a time is in flight (the
   others wait for that answer, at most `PROBE_TIMEOUT` seconds each), so a batch's first wave cannot
   run into a limit it does not know yet.
2. **A gateway that sends no such headers** is not paced (its 429s still pause every caller, as before).
3. **Within a window**, at most `remaining` requests are sent before `reset`, counting every request
   sent after the one whose answer reported it (those are not in the gateway's count yet). Of two
   answers about the same window the one that leaves less wins; an answer about a window that already
   ended is ignored.
4. **When the window ends** the budget is not assumed back: one request goes first, and its answer
   tells the new window's budget (a whole window of requests sent at a guessed boundary could land in
   the old window).
5. **A 429** stops sending until the window's reset (and the Retry-After pause, for every caller).

This is exact for gateways that count in fixed windows and safe for token buckets (each answer
refreshes what is left). Requests only: token headers are not used to pace (`tpm_limit` does that).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping

from gateway.call.rate_limits import RateLimitTimeout

PROBE_TIMEOUT = 5.0  # seconds a waiting request gives an unanswered probe before it probes itself
POLL = 0.01  # how often a waiting request looks again while a probe is out
MAX_RESET = 86_400.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_reset(value: str | None) -> float | None:
    """Seconds from `6m0s`, `1s`, `250ms`, `1h2m3.5s` or a plain number of seconds; None when unreadable."""
    if not value:
        return None
    text = value.strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
            return None
        seconds = sum(float(n) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[u] for n, u in parts)
    return seconds if 0 <= seconds <= MAX_RESET else None


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


class AdaptivePacer:
    """The pace of one gateway key learned from its answers (see the module doc)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self.mode = "probing"  # probing | window | free
        self._seq = 0  # requests sent through this pacer
        self._probe: int | None = None  # the request whose answer is awaited, while probing
        self._probe_at = 0.0
        self.limit = 0
        self._remaining = 0  # what the gateway said was left ...
        self._base = 0  # ... after the request with this number
        self.reset_at = 0.0

    @property
    def learned(self) -> bool:
        return self.mode == "window"

    def acquire(self, deadline: float | None) -> int:
        """Waits for room and returns the request's number (give it back to `observe` with the answer)."""
        if self.mode == "free":  # a gateway without rate-limit headers: no pacing, no lock
            return 0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._room(now)
                if wait <= 0:
                    self._seq += 1
                    if self.mode == "probing" and self._probe is None:
                        self._probe, self._probe_at = self._seq, now
                    return self._seq
            if deadline is not None and now + wait > deadline:
                raise RateLimitTimeout(wait)
            self._sleep(wait)

    def _room(self, now: float) -> float:
        """0 when a request may go now, else how long to wait before looking again."""
        if self.mode == "free":
            return 0.0
        if self.mode == "window":
            if now < self.reset_at:
                if self._remaining - (self._seq - self._base) > 0:
                    return 0.0
                return self.reset_at - now
            self.mode, self._probe = "probing", None  # the window ended: ask before assuming a new budget
        if self._probe is None or now - self._probe_at >= PROBE_TIMEOUT:
            self._probe = None
            return 0.0
        return POLL

    def release(self, number: int) -> None:
        """Request `number` got no answer at all (connection failure): if it was the probe, another may go."""
        if self._probe == number:
            with self._lock:
                if self._probe == number:
                    self._probe = None

    def observe(self, headers: Mapping[str, str], number: int, *, rejected: bool = False) -> None:
        """What the answer to request `number` said about the budget (`rejected`: it was a 429)."""
        if self.mode == "free" and not rejected:
            return
        remaining = _int(headers.get("x-ratelimit-remaining-requests"))
        reset = parse_reset(headers.get("x-ratelimit-reset-requests"))
        with self._lock:
            now = self._clock()
            if remaining is None or reset is None:
                if self.mode == "probing" and number == self._probe and not rejected:
                    self.mode = "free"  # the gateway does not tell: only its 429s pace us
                elif number == self._probe:
                    self._probe = None
                return
            if rejected:
                remaining = 0
            limit = _int(headers.get("x-ratelimit-limit-requests"))
            reset_at = now + reset
            same = 0.05 + 0.1 * reset  # two answers about one window disagree on its end by their transit times
            if not rejected and self.reset_at:
                if reset_at < self.reset_at - same:
                    return  # about a window that ended before the one we know
                if abs(reset_at - self.reset_at) <= same:
                    if self.mode != "window":
                        if number == self._probe:
                            self._probe = None  # let another probe find the new window
                        return  # about the window that just ended, while the probe asks about the next
                    if remaining - (self._seq - number) >= self._remaining - (self._seq - self._base):
                        return  # the same window: the answer that leaves less room wins
            self.mode, self._probe = "window", None
            self.limit = limit if limit is not None else max(self.limit, remaining)
            self._remaining, self._base, self.reset_at = remaining, number, reset_at


__all__ = ["AdaptivePacer", "parse_reset"]
