"""The performance issue's targets (#14), checked against one run of bench/run.py.

The issue's targets are about the gateway with governance on (a virtual key with RPM/TPM
limits and a budget, the access log and metrics: ``llm-gateway (governance, SQLite)``),
so that is the column that says met or not; the plain ``llm-gateway`` is shown beside it
to tell what governance costs from what the rest costs. Targets this harness does not
measure yet (the governed LiteLLM lane) are listed as such rather than left out, so the
table never reads as more complete than it is; CPU per chunk on long streams, 5,000 idle
connections and the soak are measured by scripts of their own, ``bench/streams.py``,
``bench/idle.py`` and ``bench/soak.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from targets import FLOOR, GATEWAY, GATEWAY_GOV_SQLITE, LITELLM

if TYPE_CHECKING:
    from report import Run, TargetResult


@dataclass(frozen=True)
class Goal:
    """One target: how to read its value from a run, the bound, and which side of it passes."""

    text: str
    value: Callable[[Run, TargetResult], float | None]
    bound: float
    at_least: bool
    unit: str


def _per_core_vs(reference: str) -> Callable[[Run, TargetResult], float | None]:
    def value(run: Run, gateway: TargetResult) -> float | None:
        base = run.result(reference)
        if gateway.per_core_rps is None or base is None or not base.per_core_rps:
            return None
        return gateway.per_core_rps / base.per_core_rps

    return value


GOALS = (
    Goal("req/s per core ≥ 3x passthrough (aiohttp)", _per_core_vs(FLOOR), 3.0, True, "x"),
    Goal("req/s per core ≥ 100x LiteLLM", _per_core_vs(LITELLM), 100.0, True, "x"),
    Goal(
        "added p99 at the fixed rate ≤ 1 ms",
        lambda run, g: g.at_rate.added_p99 if g.at_rate else None,
        1.0,
        False,
        " ms",
    ),
    Goal(
        "added p50 at concurrency 1 ≤ 0.25 ms",
        lambda run, g: g.latency_0ms.added_p50 if g.latency_0ms else None,
        0.25,
        False,
        " ms",
    ),
    Goal(
        "stream TTFT added p50 ≤ 0.3 ms",
        lambda run, g: g.ttft.added_p50 if g.ttft else None,
        0.3,
        False,
        " ms",
    ),
    Goal("peak RSS ≤ 100 MiB", lambda run, g: g.peak_rss_mb, 100.0, False, " MiB"),
)
NOT_MEASURED = ("governed LiteLLM lane (Postgres-backed virtual key with a budget)",)
ELSEWHERE = (
    ("CPU per relayed chunk ≤ passthrough's (500-chunk streams, c=16 and c=256)", "bench/streams.py"),
    ("5,000 idle keep-alive client connections without errors", "bench/idle.py"),
    ("30-minute soak: RSS growth ≤ 5% after warm-up", "bench/soak.py"),
)
"""Targets measured by a script of their own, outside bench/run.py's timed phases."""


def _cell(goal: Goal, run: Run, gateway: TargetResult | None) -> tuple[str, str]:
    """(measured value, met) for one gateway target, or why there is none."""
    value = None if gateway is None else goal.value(run, gateway)
    if value is None:
        return "not measured", "-"
    met = value >= goal.bound if goal.at_least else value <= goal.bound
    number = {"x": f"{value:.2f}", " MiB": f"{value:.1f}"}.get(goal.unit, f"{value:+.3f}")
    return number + goal.unit, "yes" if met else "**no**"


def targets_table(run: Run) -> str:
    """The issue's targets: the governed gateway's value and verdict, the plain gateway's beside."""
    governed, plain = run.result(GATEWAY_GOV_SQLITE), run.result(GATEWAY)
    lines = [
        f"Targets of issue #14, for {GATEWAY_GOV_SQLITE} ({GATEWAY} beside it, for reference):",
        "",
        f"| target | {GATEWAY_GOV_SQLITE} | met | {GATEWAY} | met |",
        "|---|--:|:-:|--:|:-:|",
    ]
    for goal in GOALS:
        cells = [*_cell(goal, run, governed), *_cell(goal, run, plain)]
        lines.append(f"| {goal.text} | " + " | ".join(cells) + " |")
    lines += [f"| {text} | not measured by bench/run.py | - | | |" for text in NOT_MEASURED]
    lines += [f"| {text} | run `{script}` | - | | |" for text, script in ELSEWHERE]
    return "\n".join(lines)
