"""Backoff math, retry-after, the deadline, and what each failure tells the breaker."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.core.config import BreakerSettings
from llm_gateway.core.errors import (
    ContentPolicyViolation,
    ContextLengthExceeded,
    GatewayError,
    InvalidRequest,
    UpstreamConnectionError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
    is_retryable,
)
from llm_gateway.routing.retry import backoff, breaker_verdict, retry_delay

BREAKER = BreakerSettings(cooldown=30, long_retry_after=20)


@given(
    attempt=st.integers(min_value=1, max_value=30),
    base=st.floats(min_value=0.001, max_value=2),
    cap=st.floats(min_value=0.001, max_value=60),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_full_jitter_stays_within_bounds(attempt: int, base: float, cap: float, seed: int) -> None:
    delay = backoff(attempt, base, cap, random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2 ** (attempt - 1))


def test_full_jitter_is_spread_over_the_whole_range() -> None:
    rng = random.Random(1)
    delays = [backoff(3, 0.1, 10, rng) for _ in range(5000)]
    assert max(delays) <= 0.4
    assert min(delays) < 0.02
    assert sum(delays) / len(delays) == pytest.approx(0.2, abs=0.01)


def test_backoff_grows_then_caps() -> None:
    rng = random.Random(2)
    assert max(backoff(1, 0.1, 1, rng) for _ in range(2000)) <= 0.1
    assert max(backoff(4, 0.1, 1, rng) for _ in range(2000)) == pytest.approx(0.8, abs=0.01)
    assert max(backoff(10, 0.1, 1, rng) for _ in range(2000)) == pytest.approx(1.0, abs=0.01)


def test_retry_after_is_honoured_as_a_minimum() -> None:
    error = UpstreamRateLimited("slow down", retry_after=2.5)
    delay = retry_delay(1, error, base=0.1, cap=5, rng=random.Random(0), remaining=60)
    assert delay == 2.5


def test_retry_after_longer_than_the_cap_is_handed_to_the_client() -> None:
    error = UpstreamRateLimited("slow down", retry_after=7)
    assert retry_delay(1, error, base=0.1, cap=5, rng=random.Random(0), remaining=60) is None


@given(
    attempt=st.integers(min_value=1, max_value=10),
    retry_after=st.none() | st.floats(min_value=0, max_value=10),
    remaining=st.floats(min_value=0, max_value=10),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_a_retry_never_waits_past_the_deadline(
    attempt: int, retry_after: float | None, remaining: float, seed: int
) -> None:
    error = UpstreamUnavailable("boom", retry_after=retry_after)
    delay = retry_delay(attempt, error, base=0.5, cap=10, rng=random.Random(seed), remaining=remaining)
    assert delay is None or delay < remaining
    if delay is not None and retry_after is not None:
        assert delay >= retry_after


@pytest.mark.parametrize(
    "error",
    [
        UpstreamConnectionError("reset"),
        UpstreamTimeout("slow"),
        UpstreamUnavailable("500"),
        UpstreamOverloaded("529"),
        UpstreamRateLimited("429"),
        UpstreamStatusError("timeout", status=408),
        UpstreamStatusError("conflict", status=409),
    ],
)
def test_retryable_failures(error: GatewayError) -> None:
    assert is_retryable(error)
    assert retry_delay(1, error, base=0.1, cap=1, rng=random.Random(0), remaining=10) is not None


@pytest.mark.parametrize(
    "error",
    [
        UpstreamStatusError("bad", status=400),
        UpstreamStatusError("key", status=401),
        UpstreamStatusError("forbidden", status=403),
        UpstreamStatusError("missing", status=404),
        UpstreamStatusError("unprocessable", status=422),
        ContextLengthExceeded("too long"),
        ContentPolicyViolation("no"),
        InvalidRequest("the gateway's own 400"),
    ],
)
def test_never_retried(error: GatewayError) -> None:
    assert not is_retryable(error)
    assert retry_delay(1, error, base=0.1, cap=1, rng=random.Random(0), remaining=10) is None


def test_breaker_verdicts() -> None:
    assert breaker_verdict(UpstreamStatusError("key", status=401), BREAKER) == (True, 30)
    assert breaker_verdict(UpstreamStatusError("key", status=403), BREAKER) == (True, 30)
    assert breaker_verdict(UpstreamRateLimited("429", retry_after=60), BREAKER) == (True, 60)
    assert breaker_verdict(UpstreamRateLimited("429", retry_after=3), BREAKER) == (True, None)
    assert breaker_verdict(UpstreamUnavailable("500"), BREAKER) == (True, None)
    assert breaker_verdict(UpstreamStatusError("bad", status=400), BREAKER) == (False, None)
    assert breaker_verdict(ContextLengthExceeded("too long"), BREAKER) == (False, None)
