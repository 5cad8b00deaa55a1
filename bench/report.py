"""The benchmark's results as data, as JSON, and as the markdown tables of docs/performance.md.

Absolute numbers move with the machine, its load and its thermal state; the
ratios (against the two floors, the bare passthrough and LiteLLM, measured in
the same run on the same core) and the latency *added* over calling the
upstream directly are what one run can be compared with another by.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import goals
from probe import Paired
from targets import FLOOR, FLOOR_ASGI, FLOOR_ASYNCIO, LITELLM, UPSTREAM


@dataclass
class TargetResult:
    """Everything measured for one target; ``failure`` is set when it could not be measured."""

    name: str
    rps: float | None = None
    requests: int = 0
    errors: int = 0
    cpu_us_per_request: float | None = None
    server_busy: float | None = None
    foreign_cores: float | None = None
    forwarded_ratio: float | None = None
    latency_0ms: Paired | None = None
    latency_50ms: Paired | None = None
    ttft: Paired | None = None
    at_rate: Paired | None = None
    """Latency at the fixed rate: the upstream directly, then the target."""
    at_rate_rps: float | None = None
    at_rate_errors: int = 0
    peak_rss_mb: float | None = None
    failure: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def per_core_rps(self) -> float | None:
        """Requests one fully owned core could serve: 1 s / CPU per request.

        Unlike the measured req/s it does not drop when the load core, or another
        process on a shared machine, fails to keep the server core busy.
        """
        return 1e6 / self.cpu_us_per_request if self.cpu_us_per_request else None


@dataclass
class Run:
    """One run of bench/run.py: its settings, the machine, and one result per target."""

    settings: dict[str, Any]
    environment: dict[str, Any]
    results: list[TargetResult]

    def result(self, name: str) -> TargetResult | None:
        return next((r for r in self.results if r.name == name and r.failure is None), None)

    def to_json(self) -> dict[str, Any]:
        def paired(p: Paired | None) -> dict[str, Any] | None:
            if p is None:
                return None
            return {**asdict(p), "added_p50_ms": p.added_p50, "added_p99_ms": p.added_p99}

        results = []
        for r in self.results:
            row = asdict(r)
            row.update(
                latency_0ms=paired(r.latency_0ms),
                latency_50ms=paired(r.latency_50ms),
                ttft=paired(r.ttft),
                at_rate=paired(r.at_rate),
            )
            row["per_core_rps"] = r.per_core_rps
            results.append(row)
        return {"settings": self.settings, "environment": self.environment, "results": results}


def _ratio(value: float | None, base: float | None, fmt: str) -> str:
    if value is None or not base:
        return "-"
    return format(value / base, fmt)


def _times(ratio: str) -> str:
    return ratio if ratio == "-" else ratio + "x"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def _pair(p: Paired | None) -> str:
    return "-" if p is None else f"{_ms(p.added_p50)} / {_ms(p.added_p99)}"


def _int(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def results_table(run: Run) -> str:
    """The main table: throughput, ratios, CPU, added latency, memory.

    Ratios compare per-core capacity (1 s / CPU per request), which a shared or
    noisy machine disturbs far less than the measured req/s; both are shown.
    """
    litellm = run.result(LITELLM)
    floor = run.result(FLOOR)
    lines = [
        "| target | req/s measured (core busy) | req/s per core | x LiteLLM | % of passthrough | CPU µs/req "
        "| added p50 / p99 ms (0 ms upstream) | added p50 / p99 ms (50 ms upstream) "
        "| stream TTFT added p50 ms | peak RSS MiB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in run.results:
        if r.failure is not None:
            lines.append(f"| {r.name} | {r.failure} | | | | | | | | |")
            continue
        measured = _int(r.rps)
        if r.server_busy is not None:
            measured += f" ({r.server_busy:.0%})"
        if r.errors:
            measured += f", {r.errors} errors"
        lines.append(
            f"| {r.name} | {measured} | {_int(r.per_core_rps)} "
            f"| {_times(_ratio(r.per_core_rps, litellm.per_core_rps if litellm else None, '.1f'))} "
            f"| {_ratio(r.per_core_rps, floor.per_core_rps if floor else None, '.0%')} "
            f"| {_int(r.cpu_us_per_request)} "
            f"| {_pair(r.latency_0ms)} | {_pair(r.latency_50ms)} "
            f"| {'-' if r.ttft is None else _ms(r.ttft.added_p50)} "
            f"| {_int(r.peak_rss_mb)} |"
        )
    return "\n".join(lines)


def absolute_table(run: Run) -> str:
    """The raw p50/p99 behind the *added* columns, upstream-direct beside target."""
    lines = [
        "| target | direct p50 / p99 ms (0 ms) | target p50 / p99 ms (0 ms) "
        "| direct p50 / p99 ms (50 ms) | target p50 / p99 ms (50 ms) "
        "| direct / target TTFT p50 ms | samples |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in run.results:
        if r.failure is not None or r.latency_0ms is None:
            continue
        cells = []
        for p in (r.latency_0ms, r.latency_50ms):
            cells += (
                ["-", "-"]
                if p is None
                else [
                    f"{p.direct.p50:.3f} / {p.direct.p99:.3f}",
                    f"{p.target.p50:.3f} / {p.target.p99:.3f}",
                ]
            )
        ttft = "-" if r.ttft is None else f"{r.ttft.direct.p50:.3f} / {r.ttft.target.p50:.3f}"
        counts = "/".join(
            str(p.target.count) for p in (r.latency_0ms, r.latency_50ms, r.ttft) if p is not None
        )
        lines.append(f"| {r.name} | {' | '.join(cells)} | {ttft} | {counts} |")
    return "\n".join(lines)


def ratios_table(run: Run) -> str:
    """Each target's per-core throughput as a multiple of each reference's, from the same run."""
    names = (FLOOR_ASYNCIO, FLOOR_ASGI, FLOOR, LITELLM)
    bases = [run.result(name) for name in names]
    lines = [
        "| target (req/s per core, as a multiple of) | " + " | ".join(names) + " |",
        "|---|" + "--:|" * len(names),
    ]
    for r in run.results:
        if r.failure is not None or r.name == UPSTREAM or r.per_core_rps is None:
            continue
        cells = [_ratio(r.per_core_rps, b.per_core_rps if b else None, ".2f") for b in bases]
        lines.append(f"| {r.name} | " + " | ".join(_times(c) for c in cells) + " |")
    return "\n".join(lines)


def fixed_rate_table(run: Run) -> str:
    """p50/p99 at the fixed rate, each target beside the upstream called just before it."""
    rate = run.settings.get("rate")
    if not rate:
        return "Fixed rate: not measured in this run."
    lines = [
        f"At a fixed {rate:,.0f} req/s in bursts of {run.settings.get('burst')} "
        f"({run.settings.get('rate_source')}; {run.settings.get('rate_driver')}):",
        "",
        "| target | req/s achieved | direct p50 / p99 ms | target p50 / p99 ms "
        "| added p50 / p99 ms | answers |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for r in run.results:
        p = r.at_rate
        if r.failure is not None or p is None:
            continue
        achieved = _int(r.at_rate_rps)
        if r.at_rate_rps is not None and r.at_rate_rps < 0.9 * rate:
            achieved += " (fell behind)"
        lines.append(
            f"| {r.name} | {achieved} | {p.direct.p50:.3f} / {p.direct.p99:.3f} "
            f"| {p.target.p50:.3f} / {p.target.p99:.3f} | {_pair(p)} | {p.target.count:,} |"
        )
    return "\n".join(lines)


def markdown(run: Run) -> str:
    """The whole report: settings line, the tables, the targets met or not, and any notes."""
    env, s = run.environment, run.settings
    header = (
        f"Run {env.get('date', '?')} on {env.get('cpu', '?')} ({env.get('cores', '?')} cores), "
        f"server on core {s.get('server_core')}, mock upstream + load on core {s.get('load_core')}; "
        f"{s.get('driver')} -c{s.get('connections')} for {s.get('seconds')} s per target, "
        f"spread over {s.get('rounds')} interleaved rounds."
    )
    notes = [f"- {r.name}: {note}" for r in run.results for note in r.notes]
    parts = [header, "", results_table(run), "", ratios_table(run), "", absolute_table(run)]
    parts += ["", fixed_rate_table(run), "", goals.targets_table(run)]
    if notes:
        parts += ["", "Notes:", *notes]
    return "\n".join(parts) + "\n"
