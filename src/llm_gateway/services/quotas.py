"""From scopes to counter quotas and back to what a client is told: budget periods (calendar
aligned in UTC), the refusal errors, and OpenAI's `x-ratelimit-*` headers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from llm_gateway.core.context import BudgetPeriod, Scope
from llm_gateway.core.errors import BudgetExceeded, LimitExceeded, PolicyError
from llm_gateway.store.counters import WINDOW, Ask, Quota, Refusal, Verdict, to_nanos

SPEND_RETENTION = timedelta(days=35)
"""How long, at least, a finished period's spend stays readable in the shared store (up to a
day longer: the TTL is counted from the start of the UTC day the quota was made on)."""
DAY = 86_400
MICRO_USD = Decimal("0.000001")


def period_of(period: BudgetPeriod, now: datetime) -> tuple[str, datetime | None]:
    """The budget period `now` falls in: its id (part of the counter's key, so a new period
    starts at zero with nothing to sweep) and when it ends (None: never)."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return f"d{day:%Y-%m-%d}", day + timedelta(days=1)
    if period == "weekly":
        monday = day - timedelta(days=day.weekday())
        return f"w{monday:%Y-%m-%d}", monday + timedelta(days=7)
    if period == "monthly":
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return f"m{first:%Y-%m}", following
    return "all", None


def quota_of(scope: Scope, now: float) -> Quota:
    """The scope's limits as the counters take them, in the budget period `now` falls in.

    Made once per scope and UTC day (`_quota_on`): every period starts at midnight UTC, so the
    date maths (about 14 µs a scope, measured) need not run on every request. A changed
    limit is another `Scope`, so it gets its own quota at once.
    """
    return _quota_on(scope, int(now // DAY))


@lru_cache(maxsize=4096)
def _quota_on(scope: Scope, day: int) -> Quota:
    limits = scope.limits
    budget = None if limits.budget_usd is None else to_nanos(limits.budget_usd)
    start = day * DAY
    period, ends = period_of(limits.budget_period, datetime.fromtimestamp(start, UTC))
    ttl = None if ends is None else math.ceil((ends + SPEND_RETENTION).timestamp() - start)
    return Quota(
        scope=f"{scope.kind}:{scope.id}",
        rpm=limits.rpm,
        tpm=limits.tpm,
        max_parallel=limits.max_parallel,
        budget=budget,
        period=period if budget is not None else "all",
        period_ttl=ttl if budget is not None else None,
    )


def governs(scope: Scope) -> bool:
    limits = scope.limits
    return any(
        value is not None for value in (limits.rpm, limits.tpm, limits.max_parallel, limits.budget_usd)
    )


def duration(seconds: float) -> str:
    """OpenAI's reset format: `250ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    total = round(seconds, 3)
    if total < 60:  # a rate window's reset, on every governed response
        return f"{total:.3f}".rstrip("0").rstrip(".") + "s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    return f"{int(minutes)}m{text}" if minutes else text


def refusal_error(refusal: Refusal, scope: Scope, now: float) -> PolicyError:
    error = _refusal_error(refusal, scope, now)
    error.scope = scope.kind
    return error


def _refusal_error(refusal: Refusal, scope: Scope, now: float) -> PolicyError:
    who = f"end user {scope.name!r}" if scope.kind == "user" else f"{scope.kind} {scope.name or scope.id!r}"
    if refusal.kind == "budget":
        _, ends = period_of(scope.limits.budget_period, datetime.fromtimestamp(now, UTC))
        resets = f"; it resets at {ends:%Y-%m-%dT%H:%M:%SZ}" if ends is not None else "; it does not reset"
        return BudgetExceeded(
            f"budget exceeded for {who}: ${scope.limits.budget_usd} per "
            f"{_period_name(scope.limits.budget_period)} is spent or held by running requests{resets}"
        )
    headers: dict[str, str] = {}
    if refusal.retry_after is not None:
        headers = {
            "retry-after": str(max(1, math.ceil(refusal.retry_after))),
            "retry-after-ms": str(math.ceil(refusal.retry_after * 1000)),
        }
    if refusal.kind == "parallel":
        message = f"too many parallel requests for {who} (max {scope.limits.max_parallel})"
        return LimitExceeded(message, headers={"retry-after": "1"})
    if refusal.retry_after is None:
        message = (
            f"this request's prompt alone is more than {who}'s limit of {scope.limits.tpm} tokens per minute"
        )
        return LimitExceeded(message)
    limit = f"{scope.limits.rpm} requests" if refusal.kind == "rpm" else f"{scope.limits.tpm} tokens"
    wait = duration(refusal.retry_after)
    return LimitExceeded(
        f"rate limit reached for {who}: {limit} per minute; retry in {wait}", headers=headers
    )


def _period_name(period: BudgetPeriod) -> str:
    return {"none": "lifetime", "daily": "day", "weekly": "week", "monthly": "month"}[period]


def limit_headers(ask: Ask, verdict: Verdict) -> list[tuple[str, str]]:
    """`x-ratelimit-*` for the tightest rpm and tpm scope, and the smallest budget left.

    `remaining` counts this request when it was admitted; `reset` is when the oldest entry
    counted leaves the window (when the next request, or the oldest tokens, free up). The
    tightest is the one with the least remaining, then the latest reset; on a tie, the first.
    One pass over the scopes: this runs on every governed request.
    """
    counted = verdict.admitted
    now = verdict.now
    requests: tuple[int, float, int] | None = None  # (remaining, reset, limit)
    tokens: tuple[int, float, int] | None = None
    left: int | None = None
    for q, s in zip(ask.quotas, verdict.standings, strict=True):
        if q.rpm is not None:
            entry = (q.rpm - s.requests - counted, _reset(s.oldest_request, counted, now), q.rpm)
            requests = entry if requests is None or _tighter(entry, requests) else requests
        if q.tpm is not None:
            used = s.tokens + (ask.tokens if counted else 0)
            entry = (q.tpm - used, _reset(s.oldest_tokens, counted, now), q.tpm)
            tokens = entry if tokens is None or _tighter(entry, tokens) else tokens
        if q.budget is not None:
            budget = q.budget - s.spent - s.held - (ask.hold if counted else 0)
            left = budget if left is None else min(left, budget)
    headers: list[tuple[str, str]] = []
    if requests is not None:
        remaining, reset, limit = requests
        headers += [
            ("x-ratelimit-limit-requests", str(limit)),
            ("x-ratelimit-remaining-requests", str(max(0, remaining))),
            ("x-ratelimit-reset-requests", duration(reset)),
        ]
    if tokens is not None:
        remaining, reset, limit = tokens
        headers += [
            ("x-ratelimit-limit-tokens", str(limit)),
            ("x-ratelimit-remaining-tokens", str(max(0, remaining))),
            ("x-ratelimit-reset-tokens", duration(reset)),
        ]
    if left is not None:
        headers.append(("x-llm-gateway-budget-remaining-usd", micro_usd(max(0, left))))
    return headers


def micro_usd(nanos: int) -> str:
    """Non-negative nano-dollars as dollars to six places, rounded half to even: the text of
    `to_usd(nanos).quantize(MICRO_USD)`, in integer arithmetic (a fifth of its cost)."""
    micros, rest = divmod(nanos, 1000)
    if rest > 500 or (rest == 500 and micros % 2):
        micros += 1
    dollars, fraction = divmod(micros, 1_000_000)
    return f"{dollars}.{fraction:06d}"


def _tighter(entry: tuple[int, float, int], best: tuple[int, float, int]) -> bool:
    return entry[0] < best[0] or (entry[0] == best[0] and entry[1] > best[1])


def _reset(oldest: float | None, counted: bool, now: float) -> float:
    if oldest is not None:
        return max(0.0, oldest + WINDOW - now)
    return WINDOW if counted else 0.0


def scope_of(quota: Quota, scopes: Sequence[Scope]) -> Scope:
    return next(s for s in scopes if f"{s.kind}:{s.id}" == quota.scope)
