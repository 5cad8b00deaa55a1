"""Load-balancing strategies: which of a group's healthy deployments takes the next attempt.

Each strategy is a pure function of the candidates, what is known about them (`Load`) and
a random source, so its distribution is tested by counting picks with a seeded RNG.
Unhealthy and at-capacity deployments were filtered out before any strategy runs.

- `weighted`: random, proportional to `weight` (the default).
- `least-busy`: fewest requests in flight; ties broken by weight.
- `latency`: power of two choices over a peak-EWMA of time to first token times
  (in-flight + 1). The estimate decays while a deployment gets no traffic, so a slow one
  is probed again now and then instead of being starved forever.
- `cost`: the cheapest priced deployment (input + output price per million tokens);
  unpriced ones come last; ties broken by weight.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol

from llm_gateway.routing.deployments import Target


class Load(Protocol):
    """What the health board knows about a deployment right now."""

    def in_flight(self, target: Target) -> int: ...

    def latency(self, target: Target) -> float | None:
        """Decayed EWMA of time to first token in seconds; None before the first sample."""


Pick = Callable[[Sequence[Target], Load, random.Random], Target]


def weighted(targets: Sequence[Target], load: Load, rng: random.Random) -> Target:
    if len(targets) == 1:
        return targets[0]
    return rng.choices(targets, weights=[t.weight for t in targets])[0]


def least_busy(targets: Sequence[Target], load: Load, rng: random.Random) -> Target:
    counts = [load.in_flight(t) for t in targets]
    fewest = min(counts)
    return weighted([t for t, n in zip(targets, counts, strict=True) if n == fewest], load, rng)


def latency(targets: Sequence[Target], load: Load, rng: random.Random) -> Target:
    """Power of two choices: two distinct candidates drawn by weight, the lower score wins."""
    if len(targets) == 1:
        return targets[0]
    first = weighted(targets, load, rng)
    rest = [t for t in targets if t is not first]
    second = weighted(rest, load, rng)
    return first if score(first, load) <= score(second, load) else second


def score(target: Target, load: Load) -> float:
    """Expected wait: latency estimate times the queue it would join. Unknown scores 0 (try it)."""
    estimate = load.latency(target)
    return 0.0 if estimate is None else estimate * (load.in_flight(target) + 1)


def cheapest(targets: Sequence[Target], load: Load, rng: random.Random) -> Target:
    priced = [t for t in targets if t.cost is not None]
    if not priced:
        return weighted(targets, load, rng)
    low = min(t.cost for t in priced if t.cost is not None)
    return weighted([t for t in priced if t.cost == low], load, rng)


STRATEGIES: dict[str, Pick] = {
    "weighted": weighted,
    "least-busy": least_busy,
    "latency": latency,
    "cost": cheapest,
}
