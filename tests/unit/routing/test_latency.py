"""Peak-EWMA, the hedge percentile window, and rpm/tpm capacity windows."""

from __future__ import annotations

import pytest

from llm_gateway.routing.capacity import Capacity, RateWindow, tokens_used
from llm_gateway.routing.latency import LatencyWindow, PeakEwma


def test_peak_ewma_jumps_up_at_once_and_comes_down_gradually() -> None:
    ewma = PeakEwma(tau=10, decay=30)
    ewma.observe(0.1, 0.0)
    ewma.observe(2.0, 1.0)
    assert ewma.estimate(1.0) == 2.0
    ewma.observe(0.1, 2.0)
    assert 1.5 < (ewma.value or 0) < 2.0  # one fast answer does not erase a slow one
    for step in range(3, 60):
        ewma.observe(0.1, float(step))
    assert ewma.estimate(60.0) == pytest.approx(0.1, abs=0.05)


def test_peak_ewma_decays_while_unused_so_slow_deployments_get_probed() -> None:
    ewma = PeakEwma(tau=10, decay=30)
    ewma.observe(3.0, 0.0)
    assert ewma.estimate(0.0) == 3.0
    assert ewma.estimate(30.0) == pytest.approx(3.0 / 2.718281828, rel=1e-6)
    assert (ewma.estimate(300.0) or 1) < 0.001


def test_unmeasured_latency_is_unknown() -> None:
    assert PeakEwma().estimate(5.0) is None


def test_latency_window_quantile_needs_enough_samples() -> None:
    window = LatencyWindow(size=100, every=1, min_samples=20)
    for i in range(19):
        window.add(float(i))
    assert window.quantile(0.95) is None
    window.add(19.0)
    assert window.quantile(0.95) == 18.0
    assert window.quantile(0.5) == 9.0


def test_latency_window_keeps_only_recent_samples() -> None:
    window = LatencyWindow(size=50, every=1, min_samples=10)
    for _ in range(50):
        window.add(10.0)
    for _ in range(50):
        window.add(1.0)
    assert window.quantile(0.99) == 1.0


def test_rate_window_slides() -> None:
    window = RateWindow(limit=10, period=60)
    for _ in range(10):
        window.add(0.0)
    assert window.full(30.0)
    assert window.used(60.0) == pytest.approx(10.0)  # all of the previous minute still overlaps
    assert window.used(90.0) == pytest.approx(5.0)
    assert not window.full(90.0)
    assert window.used(125.0) == 0.0


def test_capacity_skips_a_deployment_at_rpm_or_tpm() -> None:
    capacity = Capacity(rpm=2, tpm=100)
    assert capacity.has_room(0.0)
    capacity.started(0.0)
    capacity.started(1.0)
    assert not capacity.has_room(2.0)
    tokens_only = Capacity(rpm=None, tpm=100)
    tokens_only.spent(0.0, 150)
    assert not tokens_only.has_room(1.0)


def test_tokens_used_reads_openai_usage() -> None:
    assert tokens_used({"usage": {"total_tokens": 12}}) == 12
    assert tokens_used({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == 7
    assert tokens_used({"choices": []}) == 0
    assert tokens_used(("not", "a", "dict")) == 0
