"""Budget periods (calendar-aligned in UTC), OpenAI's reset format, and the refusal errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.core.context import Limits, Scope
from llm_gateway.core.errors import BudgetExceeded, LimitExceeded
from llm_gateway.services.quotas import MICRO_USD, duration, micro_usd, period_of, quota_of, refusal_error
from llm_gateway.store.counters import Quota, Refusal, to_usd

D = datetime


@pytest.mark.parametrize(
    ("period", "at", "expected", "ends"),
    [
        ("none", datetime(2025, 6, 18, 13, tzinfo=UTC), "all", None),
        ("daily", D(2025, 6, 18, 23, 59, tzinfo=UTC), "d2025-06-18", D(2025, 6, 19, tzinfo=UTC)),
        ("daily", datetime(2025, 6, 19, 0, 0, tzinfo=UTC), "d2025-06-19", datetime(2025, 6, 20, tzinfo=UTC)),
        ("weekly", datetime(2025, 6, 22, 23, tzinfo=UTC), "w2025-06-16", datetime(2025, 6, 23, tzinfo=UTC)),
        ("weekly", datetime(2025, 6, 23, 0, tzinfo=UTC), "w2025-06-23", datetime(2025, 6, 30, tzinfo=UTC)),
        ("monthly", datetime(2025, 12, 31, 23, tzinfo=UTC), "m2025-12", datetime(2026, 1, 1, tzinfo=UTC)),
        ("monthly", datetime(2025, 2, 1, tzinfo=UTC), "m2025-02", datetime(2025, 3, 1, tzinfo=UTC)),
    ],
)
def test_periods_are_calendar_aligned_in_utc(
    period: str, at: datetime, expected: str, ends: datetime | None
) -> None:
    assert period_of(period, at) == (expected, ends)  # type: ignore[arg-type]


def test_a_local_time_is_read_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    assert period_of("daily", datetime(2025, 6, 19, 8, tzinfo=tokyo))[0] == "d2025-06-18"


def test_quota_of_a_scope() -> None:
    limits = Limits(rpm=5, budget_usd=Decimal("1.5"), budget_period="daily")
    quota = quota_of(Scope("team", "t", limits=limits), datetime(2025, 6, 18, 12, tzinfo=UTC).timestamp())
    assert (quota.scope, quota.rpm, quota.budget, quota.period) == ("team:t", 5, 1_500_000_000, "d2025-06-18")
    assert quota.period_ttl is not None and quota.period_ttl > 12 * 3600


def test_a_quota_is_remade_when_its_period_or_limits_change() -> None:
    limits = Limits(budget_usd=Decimal(1), budget_period="monthly")
    scope = Scope("key", "k", limits=limits)
    last_second = datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC).timestamp()
    assert quota_of(scope, last_second).period == "m2025-06"
    assert quota_of(scope, last_second + 1).period == "m2025-07"
    assert quota_of(scope, last_second - 3600) is quota_of(scope, last_second)  # same day: made once
    tighter = Scope("key", "k", limits=Limits(budget_usd=Decimal(2), budget_period="monthly"))
    assert quota_of(tighter, last_second).budget == 2_000_000_000
    ttl = quota_of(scope, last_second).period_ttl
    assert ttl == 36 * 86_400  # from the start of the period's last day to 35 days past its end


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0123, "13ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (59.9994, "59.999s"),
        (360, "6m0s"),
        (3723, "1h2m3s"),
    ],
)
def test_openai_reset_format(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_refusals() -> None:
    scope = Scope("key", "k", "ci", Limits(rpm=3, budget_usd=Decimal(2), budget_period="monthly"))
    quota = Quota("key:k", rpm=3)
    now = datetime(2025, 6, 18, tzinfo=UTC).timestamp()
    rate = refusal_error(Refusal(quota, "rpm", 2.2), scope, now)
    assert isinstance(rate, LimitExceeded) and rate.headers == {"retry-after": "3", "retry-after-ms": "2200"}
    assert "3 requests per minute" in rate.message
    budget = refusal_error(Refusal(quota, "budget", None), scope, now)
    assert isinstance(budget, BudgetExceeded) and budget.status_code == 402
    assert "key 'ci'" in budget.message and "2025-07-01T00:00:00Z" in budget.message


@given(st.integers(min_value=0, max_value=10**21))
def test_micro_usd_is_the_decimal_quantized_text(nanos: int) -> None:
    assert micro_usd(nanos) == str(to_usd(nanos).quantize(MICRO_USD))


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(0, "0.000000"), (499, "0.000000"), (500, "0.000000"), (1_500, "0.000002"), (2_500, "0.000002")],
)
def test_micro_usd_rounds_half_to_even(nanos: int, text: str) -> None:
    assert micro_usd(nanos) == text
