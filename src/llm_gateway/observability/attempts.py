"""Upstream time per request, from the executor's attempt reports.

Reports carry no request id; they are made on the request's own task (or a hedge's,
which copies its context), so the access middleware puts a fresh `UpstreamClock` in a
context variable and `UpstreamTiming`, an attempt observer, adds each report to whatever
clock is current. Upstream time is the union of the attempts' intervals: two racing
hedges count once, a backoff between retries not at all.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Protocol


class Attempt(Protocol):
    """The fields of `routing.observers.AttemptReport` read here (this layer cannot import it)."""

    @property
    def latency(self) -> float: ...


class UpstreamClock:
    __slots__ = ("intervals",)

    def __init__(self) -> None:
        self.intervals: list[tuple[float, float]] = []

    def add(self, latency: float, end: float) -> None:
        self.intervals.append((end - latency, end))

    def total(self) -> float | None:
        """Seconds with an attempt outstanding; None when none was made."""
        intervals = self.intervals
        if not intervals:
            return None
        if len(intervals) == 1:
            start, end = intervals[0]
            return end - start
        covered = 0.0
        reach = float("-inf")
        for start, end in sorted(intervals):
            if end <= reach:
                continue
            covered += end - max(start, reach)
            reach = end
        return covered


CURRENT: ContextVar[UpstreamClock | None] = ContextVar("llm_gateway_upstream_clock", default=None)


class UpstreamTiming:
    """The attempt observer that feeds the current request's `UpstreamClock`."""

    def on_attempt(self, report: Attempt) -> None:
        clock = CURRENT.get()
        if clock is not None:
            clock.add(report.latency, time.monotonic())
