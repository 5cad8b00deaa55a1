"""Routing config: defaults merged with a model's own block, and the mistakes refused at load."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tests.stubs import catalog, deployments


def test_a_models_routing_block_overrides_only_what_it_names() -> None:
    cat = catalog(
        {"a": deployments("x", routing={"strategy": "latency", "hedge_after": "p99"}), "b": deployments("y")},
        max_attempts=5,
        deadline=30,
        hedge_after_ms=200,
    )
    a, b = cat.group("a").policy, cat.group("b").policy
    assert (a.strategy, a.max_attempts, a.deadline) == ("latency", 5, 30)
    assert (a.hedge_after, a.hedge_after_ms) == ("p99", None)  # one hedge setting replaces the other
    assert cat.group("a").hedge_quantile == 0.99
    assert (b.strategy, b.hedge_after_ms) == ("weighted", 200)


def test_deployment_fields_reach_the_targets() -> None:
    block = deployments("x")
    block["deployments"][0].update(
        weight=2.5, rpm=10, tpm=1000, timeout=7, pricing={"input_per_mtok": 1.5, "output_per_mtok": 6}
    )
    target = catalog({"m": block}).group("m").targets[0]
    assert (target.weight, target.rpm, target.tpm, target.timeout) == (2.5, 10, 1000, 7)
    assert target.cost == 7.5
    assert target.time_limit == 7
    assert catalog({"m": deployments("x")}).group("m").targets[0].time_limit == 60.0  # provider default


@pytest.mark.parametrize(
    ("models", "routing", "message"),
    [
        ({"m": deployments("x", fallbacks=["nope"])}, {}, "models.m.fallbacks: 'nope'"),
        ({"m": deployments("x", context_window_fallbacks=["m"])}, {}, "context_window_fallbacks: 'm'"),
        ({"m": deployments("x", routing={"hedge_after_ms": 5, "hedge_after": "p95"})}, {}, "not both"),
        ({"m": deployments("x", routing={"hedge_after": "fast"})}, {}, "hedge_after"),
        ({"m": deployments("x", routing={"strategy": "random"})}, {}, "strategy"),
        ({"m": deployments("x", retries={"max_attempts": 3})}, {}, "retries"),
        ({"m": deployments("x")}, {"max_attempts": 0}, "max_attempts"),
        ({"m": deployments("x")}, {"breaker": {"failure_rate": 1.5}}, "failure_rate"),
    ],
)
def test_routing_mistakes_are_refused(models: dict[str, Any], routing: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        catalog(models, **routing)
