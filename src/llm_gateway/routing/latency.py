"""Latency statistics the router decides with: a per-deployment peak-EWMA and a percentile window.

Both take the time as an argument, so they are tested with plain numbers.
"""

from __future__ import annotations

import math
from collections import deque


class PeakEwma:
    """An exponentially weighted moving average that jumps up at once and decays slowly.

    The weight of history depends on the time since the last sample (`tau` seconds), not
    on the number of samples, and a sample above the average replaces it (the "peak"), so
    a deployment that turns slow is avoided from its first slow answer. While no samples
    arrive the estimate decays towards zero with time constant `decay`: an avoided slow
    deployment eventually looks worth one more try, which is how it gets probed.
    """

    __slots__ = ("decay", "stamp", "tau", "value")

    def __init__(self, tau: float = 10.0, decay: float = 30.0) -> None:
        self.tau = tau
        self.decay = decay
        self.value: float | None = None
        self.stamp = 0.0

    def observe(self, sample: float, now: float) -> None:
        value = self.value
        if value is None or sample >= value:
            self.value = sample
        else:
            weight = math.exp(-max(now - self.stamp, 0.0) / self.tau)
            self.value = value * weight + sample * (1.0 - weight)
        self.stamp = now

    def estimate(self, now: float) -> float | None:
        if self.value is None:
            return None
        return self.value * math.exp(-max(now - self.stamp, 0.0) / self.decay)


class LatencyWindow:
    """The last `size` samples, for `hedge_after: p95`. The percentile is cached and
    recomputed only every `every` samples, so reading it per request costs nothing."""

    __slots__ = ("_cache", "_every", "_fresh", "_samples", "min_samples")

    def __init__(self, size: int = 512, every: int = 16, min_samples: int = 20) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._every = every
        self._fresh = 0
        self._cache: dict[float, float] = {}
        self.min_samples = min_samples

    def add(self, sample: float) -> None:
        self._samples.append(sample)
        self._fresh += 1
        if self._fresh >= self._every:
            self._cache.clear()
            self._fresh = 0

    def __len__(self) -> int:
        return len(self._samples)

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 < q < 1, nearest rank) of recent samples; None with too few."""
        if len(self._samples) < self.min_samples:
            return None
        cached = self._cache.get(q)
        if cached is None:
            ordered = sorted(self._samples)
            rank = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
            cached = self._cache[q] = ordered[rank]
        return cached
