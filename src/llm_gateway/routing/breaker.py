"""A deployment's circuit breaker: a small state machine driven by outcomes and a clock.

    closed ──(N failures, or failure rate ≥ r over ≥ min requests, in `window`)──▶ open
    closed ──(401/403, or 429 with retry-after ≥ long_retry_after)──────────────▶ open
    open ──(cooldown over)──▶ half-open: the next request is the one probe
    half-open ──probe succeeds──▶ closed        half-open ──probe fails──▶ open again

Nothing here sleeps or reads a clock of its own: every method takes `now`, so the whole
schedule is tested by passing numbers. Methods that change the state return the new
`Circuit`, which is what the shared (Redis) store is told about; counting stays local.
"""

from __future__ import annotations

from enum import StrEnum

from llm_gateway.core.config import BreakerSettings


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Outcomes:
    """Successes and failures over the last `window` seconds, kept in ten time buckets.

    Updating is an index computation and an increment, cheap enough for every request;
    the counts are as fresh as one bucket (a tenth of the window).
    """

    __slots__ = ("_bad", "_buckets", "_epoch", "_good", "_width")

    def __init__(self, window: float, buckets: int = 10) -> None:
        self._width = window / buckets
        self._buckets = buckets
        self._good = [0] * buckets
        self._bad = [0] * buckets
        self._epoch = 0

    def _roll(self, now: float) -> int:
        epoch = int(now // self._width)
        if epoch != self._epoch:
            stale = min(epoch - self._epoch, self._buckets)
            for step in range(1, stale + 1):
                slot = (self._epoch + step) % self._buckets
                self._good[slot] = self._bad[slot] = 0
            self._epoch = epoch
        return epoch % self._buckets

    def add(self, now: float, ok: bool) -> None:
        slot = self._roll(now)
        if ok:
            self._good[slot] += 1
        else:
            self._bad[slot] += 1

    def counts(self, now: float) -> tuple[int, int]:
        """(successes, failures) in the window ending at `now`."""
        self._roll(now)
        return sum(self._good), sum(self._bad)

    def clear(self) -> None:
        self._good = [0] * self._buckets
        self._bad = [0] * self._buckets


class Breaker:
    """One deployment's circuit. `admits(now)` is the question routing asks per request."""

    __slots__ = ("_settings", "opened_at", "outcomes", "probe_started", "state", "until")

    def __init__(self, settings: BreakerSettings) -> None:
        self._settings = settings
        self.state = Circuit.CLOSED
        self.until = 0.0
        self.opened_at = 0.0
        self.probe_started: float | None = None
        self.outcomes = Outcomes(settings.window)

    def circuit(self, now: float) -> Circuit:
        """The state as an operator would describe it: open turns half-open when the cooldown ends."""
        if self.state is Circuit.OPEN and now >= self.until:
            return Circuit.HALF_OPEN
        return self.state

    def admits(self, now: float) -> bool:
        """Whether a request may go to this deployment now (a half-open one: only as its probe)."""
        if self.state is Circuit.CLOSED:
            return True
        if now < self.until:
            return False
        return self.probe_started is None or now - self.probe_started >= self._settings.cooldown

    def claim_probe(self, now: float) -> bool:
        """Take the half-open probe slot; False when closed (no probe needed) or taken."""
        if self.state is Circuit.CLOSED or not self.admits(now):
            return False
        self.probe_started = now
        return True

    def release_probe(self) -> None:
        """The probe ended without a verdict (cancelled): let the next request probe."""
        self.probe_started = None

    def success(self, now: float) -> Circuit | None:
        if self.state is Circuit.CLOSED:
            self.outcomes.add(now, True)
            return None
        if self.probe_started is None:
            return None  # a straggler from before the circuit opened: no verdict
        self.close()
        return Circuit.CLOSED

    def failure(self, now: float, trip_for: float | None = None) -> Circuit | None:
        """Record a failure; `trip_for` opens the circuit at once for that long (401/403, long 429)."""
        if trip_for is not None:
            return self._open(now, max(trip_for, 0.0))
        if self.state is not Circuit.CLOSED:
            if self.probe_started is None:
                return None
            return self._open(now, self._settings.cooldown)
        self.outcomes.add(now, False)
        good, bad = self.outcomes.counts(now)
        settings = self._settings
        rate = settings.failure_rate
        total = good + bad
        if bad >= settings.failures or (
            rate is not None and total >= settings.min_requests and bad / total >= rate
        ):
            return self._open(now, settings.cooldown)
        return None

    def _open(self, now: float, duration: float) -> Circuit:
        self.force_open(now, now + duration)
        return Circuit.OPEN

    def force_open(self, now: float, until: float) -> None:
        """Open until `until` (also how another instance's open circuit is applied here)."""
        if self.state is not Circuit.OPEN:
            self.opened_at = now
        self.state = Circuit.OPEN
        self.until = max(until, self.until) if self.probe_started is None else until
        self.probe_started = None

    def close(self) -> None:
        self.state = Circuit.CLOSED
        self.until = 0.0
        self.probe_started = None
        self.outcomes.clear()
