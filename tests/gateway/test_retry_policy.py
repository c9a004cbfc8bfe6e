"""Which failures are retried and how long the client waits, as the gateway asks."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gateway.call.retry import RetryPolicy, parse_retry_after


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    assert RetryPolicy.is_retryable_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(status: int) -> None:
    assert not RetryPolicy.is_retryable_status(status)


def test_retry_after_ms_wins_over_retry_after_seconds() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "7"}) == pytest.approx(0.25)


def test_retry_after_in_seconds_and_as_http_date() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    now = datetime(2026, 1, 1, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=5), usegmt=True)
    assert parse_retry_after({"Retry-After": header}, now=now.timestamp()) == pytest.approx(5.0)
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_gateway_hint_is_capped_and_backoff_grows_with_jitter() -> None:
    policy = RetryPolicy(max_retries=3, base_delay=0.5, max_delay=4, max_retry_after=30, jitter=0.25)
    assert policy.delay(1, 3600) == 30
    first = [policy.backoff(1) for _ in range(50)]
    third = [policy.backoff(3) for _ in range(50)]
    assert all(0.375 <= d <= 0.625 for d in first)
    assert all(1.5 <= d <= 2.5 for d in third)
    assert len(set(first)) > 1  # jittered, so synchronized callers spread out
    assert policy.backoff(10) <= 4 * 1.25
