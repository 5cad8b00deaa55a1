"""Per-deployment rpm/tpm capacity: skip a deployment at its limit before it answers 429.

Counting is a sliding-window counter (this minute's count plus the previous minute's,
weighted by how much of it still overlaps the last 60 s): two integers per limit, no
per-request timestamps. Tokens are counted from each answer's `usage` once it is known,
so a burst of long requests can overshoot `tpm` by what was in flight.
"""

from __future__ import annotations

from typing import Any


class RateWindow:
    __slots__ = ("_current", "_period", "_previous", "_start", "limit")

    def __init__(self, limit: int, period: float = 60.0) -> None:
        self.limit = limit
        self._period = period
        self._start = 0.0
        self._current = 0
        self._previous = 0

    def _roll(self, now: float) -> None:
        elapsed = now - self._start
        if elapsed < self._period:
            return
        periods = int(elapsed // self._period)
        self._previous = self._current if periods == 1 else 0
        self._current = 0
        self._start += periods * self._period

    def add(self, now: float, amount: int = 1) -> None:
        self._roll(now)
        self._current += amount

    def used(self, now: float) -> float:
        self._roll(now)
        overlap = 1.0 - (now - self._start) / self._period
        return self._current + self._previous * overlap

    def full(self, now: float) -> bool:
        return self.used(now) >= self.limit


class Capacity:
    """A deployment's optional `rpm` and `tpm` windows."""

    __slots__ = ("rpm", "tpm")

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        self.rpm = RateWindow(rpm) if rpm else None
        self.tpm = RateWindow(tpm) if tpm else None

    def has_room(self, now: float) -> bool:
        if self.rpm is not None and self.rpm.full(now):
            return False
        return self.tpm is None or not self.tpm.full(now)

    def started(self, now: float) -> None:
        if self.rpm is not None:
            self.rpm.add(now)

    def spent(self, now: float, tokens: int) -> None:
        if self.tpm is not None and tokens:
            self.tpm.add(now, tokens)


def tokens_used(value: Any) -> int:
    """`usage.total_tokens` of an OpenAI-format answer or chunk (0 when it has none)."""
    if not isinstance(value, dict):
        return 0
    usage = value.get("usage")
    if not isinstance(usage, dict):
        return 0
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    parts = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return sum(p for p in parts if isinstance(p, int))
