"""Load-balancing distributions, counted over many picks with a seeded RNG."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from llm_gateway.routing.deployments import Target
from llm_gateway.routing.strategies import STRATEGIES, cheapest, latency, least_busy, weighted
from tests.stubs import target


class FakeLoad:
    def __init__(
        self, in_flight: dict[str, int] | None = None, latency: dict[str, float] | None = None
    ) -> None:
        self.flights = in_flight or {}
        self.latencies = latency or {}

    def in_flight(self, target: Target) -> int:
        return self.flights.get(target.key, 0)

    def latency(self, target: Target) -> float | None:
        return self.latencies.get(target.key)


def shares(pick_counts: Counter[str], total: int) -> dict[str, float]:
    return {key: count / total for key, count in pick_counts.items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_weighted_honours_weights_within_tolerance(seed: int) -> None:
    targets = [target("a", weight=6), target("b", weight=3), target("c", weight=1)]
    rng = random.Random(seed)
    n = 20_000
    counts = Counter(weighted(targets, FakeLoad(), rng).key for _ in range(n))
    observed = shares(counts, n)
    # Three standard deviations of a binomial share at n=20000 is under 1.1 percentage points.
    assert observed["a"] == pytest.approx(0.6, abs=0.011)
    assert observed["b"] == pytest.approx(0.3, abs=0.011)
    assert observed["c"] == pytest.approx(0.1, abs=0.007)


def test_weighted_single_target_needs_no_randomness() -> None:
    only = target("only")
    assert weighted([only], FakeLoad(), random.Random(0)) is only


def test_least_busy_avoids_the_deployment_with_requests_in_flight() -> None:
    targets = [target("slow"), target("fast")]
    load = FakeLoad(in_flight={"slow": 5, "fast": 1})
    rng = random.Random(7)
    assert {least_busy(targets, load, rng).key for _ in range(200)} == {"fast"}


def test_least_busy_spreads_ties_by_weight() -> None:
    targets = [target("a", weight=3), target("b", weight=1)]
    rng = random.Random(11)
    counts = Counter(least_busy(targets, FakeLoad(), rng).key for _ in range(8000))
    assert shares(counts, 8000)["a"] == pytest.approx(0.75, abs=0.02)


def test_latency_prefers_the_faster_deployment() -> None:
    targets = [target("slow"), target("fast")]
    load = FakeLoad(latency={"slow": 2.0, "fast": 0.1})
    rng = random.Random(3)
    assert {latency(targets, load, rng).key for _ in range(200)} == {"fast"}


def test_latency_weighs_latency_by_queue_length() -> None:
    """0.1 s with 30 in flight is worse than 1 s with none."""
    targets = [target("busy"), target("idle")]
    load = FakeLoad(in_flight={"busy": 30}, latency={"busy": 0.1, "idle": 1.0})
    assert latency(targets, load, random.Random(0)).key == "idle"


def test_latency_tries_unmeasured_deployments_first() -> None:
    targets = [target("known"), target("new")]
    load = FakeLoad(latency={"known": 0.05})
    assert latency(targets, load, random.Random(0)).key == "new"


def test_latency_two_choices_spread_over_many_deployments() -> None:
    """With five deployments, the slowest is never picked but the rest share the load."""
    targets = [target(f"d{i}") for i in range(5)]
    load = FakeLoad(latency={f"d{i}": 0.1 * (i + 1) for i in range(5)})
    rng = random.Random(5)
    counts = Counter(latency(targets, load, rng).key for _ in range(10_000))
    assert "d4" not in counts
    assert counts["d0"] > counts["d1"] > counts["d2"] > counts["d3"] > 0


def test_cost_picks_the_cheapest_priced_deployment() -> None:
    targets = [target("free-ish", cost=0.5), target("pricey", cost=10.0), target("unpriced")]
    rng = random.Random(0)
    assert {cheapest(targets, FakeLoad(), rng).key for _ in range(100)} == {"free-ish"}


def test_cost_with_nothing_priced_falls_back_to_weights() -> None:
    targets = [target("a"), target("b")]
    rng = random.Random(0)
    assert {cheapest(targets, FakeLoad(), rng).key for _ in range(100)} == {"a", "b"}


def test_every_config_strategy_is_registered() -> None:
    assert set(STRATEGIES) == {"weighted", "least-busy", "latency", "cost"}
