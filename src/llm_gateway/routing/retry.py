"""Retry decisions: whether a failure is worth another attempt, how long to wait first,
and what it tells the deployment's circuit breaker.

Retryable: connection errors, timeouts, 408, 409, 429, 5xx and 529 (`core.errors.is_retryable`).
Never: 400, 401, 403, 404, 422, context-length and content-policy rejections.

A retry that moves to another deployment goes at once; waiting only helps the deployment
that just failed. A retry of the same deployment waits for exponential backoff with full
jitter (uniform in [0, min(cap, base·2^(n-1))]) or the upstream's retry-after, whichever
is longer, and is not made at all when that wait would end past the request's deadline
or the retry-after is longer than the backoff cap (`backoff_max`).
"""

from __future__ import annotations

import random

from llm_gateway.core.config import BreakerSettings
from llm_gateway.core.errors import ProviderError, UpstreamStatusError, is_retryable

TRIPPING_STATUSES = frozenset({401, 403})


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff before retry number `attempt` (1 for the first retry)."""
    ceiling = min(cap, base * 2.0 ** max(attempt - 1, 0))
    return rng.uniform(0.0, ceiling)


def retry_delay(
    attempt: int, error: BaseException, *, base: float, cap: float, rng: random.Random, remaining: float
) -> float | None:
    """Seconds to wait before retrying the deployment that raised `error`, or None when the
    retry cannot help, would not fit before the deadline (`remaining` seconds away), or the
    upstream asks for a pause longer than `cap`: then the client gets the error and its
    retry-after at once, rather than a request held open for longer than we would back off."""
    if not is_retryable(error):
        return None
    delay = backoff(attempt, base, cap, rng)
    retry_after = error.retry_after if isinstance(error, ProviderError) else None
    if retry_after is not None:
        if retry_after > cap:
            return None
        delay = max(delay, retry_after)
    return delay if delay < remaining else None


def breaker_verdict(error: BaseException, settings: BreakerSettings) -> tuple[bool, float | None]:
    """(counts as a failure, open the circuit at once for this many seconds or None).

    Credentials the upstream refuses and long rate-limit pauses open the circuit at once;
    other retryable failures count towards the threshold; the caller's own mistakes (a bad
    request, a too-long prompt) say nothing about the deployment's health.
    """
    if isinstance(error, UpstreamStatusError) and error.status_code in TRIPPING_STATUSES:
        return True, settings.cooldown
    if not is_retryable(error):
        return False, None
    retry_after = error.retry_after if isinstance(error, ProviderError) else None
    if retry_after is not None and retry_after >= settings.long_retry_after:
        return True, retry_after
    return True, None
