"""One round of each measurement against one running target, added to that target's tally.

bench/run.py keeps every target running at once and visits them in turn, round
after round, so that a slow minute of a shared virtual machine is spread over
all targets instead of landing on one of them; each target's figures are then
computed from everything its rounds gathered.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import fixed_rate
import orjson
import probe
import procstat
import throughput
from report import TargetResult
from targets import Running

API_KEY = "sk-bench-5b0e2f7c9d14a3e86f21c0d9b7a4e3f1"


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Tally:
    """What one target has accumulated over the rounds so far."""

    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    foreign_cpu: float = 0.0
    forwarded: int = 0
    latency_0ms: probe.Samples = field(default_factory=probe.Samples)
    latency_50ms: probe.Samples = field(default_factory=probe.Samples)
    ttft: probe.Samples = field(default_factory=probe.Samples)
    at_rate: probe.Samples = field(default_factory=probe.Samples)
    at_rate_errors: int = 0
    at_rate_answers: int = 0
    at_rate_seconds: float = 0.0
    at_rate_foreign_cpu: float = 0.0
    at_rate_wall: float = 0.0
    at_rate_failure: str = ""

    def result(self, server: Running) -> TargetResult:
        """The target's figures from all rounds, plus notes on anything that disturbed them."""
        r = TargetResult(server.target.name, requests=self.requests, errors=self.errors)
        if self.requests and self.seconds:
            r.rps = (self.requests - self.errors) / self.seconds
            r.cpu_us_per_request = self.server_cpu / self.requests * 1e6
            r.server_busy = self.server_cpu / self.seconds
            r.foreign_cores = self.foreign_cpu / self.seconds
            if not server.target.is_mock:
                r.forwarded_ratio = self.forwarded / self.requests
        r.latency_0ms, r.latency_50ms, r.ttft = (
            s.paired() for s in (self.latency_0ms, self.latency_50ms, self.ttft)
        )
        if len(self.at_rate.target) >= 2 and len(self.at_rate.direct) >= 2:
            r.at_rate = self.at_rate.paired()
            r.at_rate_rps = self.at_rate_answers / self.at_rate_seconds if self.at_rate_seconds else None
            r.at_rate_errors = self.at_rate_errors
        r.peak_rss_mb = procstat.peak_rss_mb(server.pid)
        if r.server_busy is not None and r.server_busy < 0.9:
            r.notes.append(
                f"the server core was only {r.server_busy:.0%} busy under load: measured req/s "
                "understate it; the per-core figure (from CPU per request) does not"
            )
        if r.foreign_cores is not None and r.foreign_cores > 0.1:
            r.notes.append(f"other processes used {r.foreign_cores:.2f} cores during its saturation runs")
        if r.forwarded_ratio is not None and r.forwarded_ratio < 0.98:
            r.notes.append(f"only {r.forwarded_ratio:.0%} of requests reached the upstream")
        if self.errors:
            r.notes.append(f"{self.errors} of {self.requests} requests failed under load")
        if self.at_rate_failure:
            r.notes.append(f"the fixed-rate phase failed: {self.at_rate_failure}")
        if self.at_rate_errors:
            r.notes.append(f"{self.at_rate_errors} requests failed at the fixed rate")
        if self.at_rate_wall and (foreign := self.at_rate_foreign_cpu / self.at_rate_wall) > 0.1:
            r.notes.append(f"other processes used {foreign:.2f} cores during its fixed-rate runs")
        return r


def saturation_round(
    tally: Tally, server: Running, upstream: Running, seconds: float, connections: int, load_core: int | None
) -> None:
    """One wrk run: requests, errors, the server's CPU, and the CPU other processes took meanwhile."""
    forwarded_before = upstream_requests(upstream.port)
    before = cpu_snapshot(server.pid, upstream.pid)
    run = throughput.saturate(
        server.port, seconds=seconds, connections=connections, core=load_core, api_key=server.api_key
    )
    after = cpu_snapshot(server.pid, upstream.pid)
    tally.requests += run.requests
    tally.errors += run.errors
    tally.seconds += run.seconds
    tally.server_cpu += after[0] - before[0]
    tally.foreign_cpu += after[1] - before[1]
    tally.forwarded += upstream_requests(upstream.port) - forwarded_before


def latency_round(
    tally: Tally, server: Running, mock_port: int, samples: tuple[int, int, int], limit_s: float
) -> None:
    """Concurrency-1 pairs at 0 ms upstream delay, streamed first events, then pairs at 50 ms."""
    plain, delayed, streamed = samples
    probe.collect(
        tally.latency_0ms,
        mock_port,
        server.port,
        server.api_key,
        stream=False,
        samples=plain,
        max_seconds=limit_s,
    )
    probe.collect(
        tally.ttft, mock_port, server.port, server.api_key, stream=True, samples=streamed, max_seconds=limit_s
    )
    delay_ports = [mock_port, server.port] if server.target.is_mock else [mock_port]
    for port in delay_ports:
        set_delay(port, 50)
    try:
        probe.collect(
            tally.latency_50ms, mock_port, server.port, server.api_key,
            stream=False, samples=delayed, max_seconds=limit_s, warmup=3,
        )  # fmt: skip
    finally:
        for port in delay_ports:
            set_delay(port, 0)


def fixed_rate_round(
    tally: Tally, server: Running, upstream: Running, rate: float, burst: int, seconds: float,
    load_core: int | None,
) -> None:  # fmt: skip
    """The upstream directly, then the target, each at ``rate`` in bursts of ``burst``.

    The two runs follow each other, so the *added* p50/p99 compare the same minute of
    the machine; every round of every target has its own direct run.
    """

    def load(port: int) -> fixed_rate.RateRun:
        return fixed_rate.burst_load(
            port, rate=rate, burst=burst, seconds=seconds, core=load_core, api_key=server.api_key
        )

    tally.at_rate.direct.extend(load(upstream.port).latencies_ns)
    before, started = cpu_snapshot(server.pid, upstream.pid)[1], time.monotonic()
    run = load(server.port)
    tally.at_rate_foreign_cpu += cpu_snapshot(server.pid, upstream.pid)[1] - before
    tally.at_rate_wall += time.monotonic() - started
    tally.at_rate.target.extend(run.latencies_ns)
    tally.at_rate_errors += run.errors
    tally.at_rate_answers += len(run.latencies_ns) + run.errors
    tally.at_rate_seconds += run.seconds


def set_delay(port: int, ms: float) -> None:
    probe.call(port, probe.control_request(port, "POST", "/_mock/delay", {"ms": ms}))


def upstream_requests(port: int) -> int:
    stats = orjson.loads(probe.call(port, probe.control_request(port, "GET", "/_mock/stats")))
    return int(stats["requests"])


def cpu_snapshot(server_pid: int | None, mock_pid: int) -> tuple[float, float]:
    """CPU seconds so far of the server, and of everything outside the benchmark.

    The outside share is the machine's busy time less the server, the mock and this
    process with its finished children (wrk). Idle targets waiting for their turn
    count as outside, which is right: they should cost nothing.
    """
    server = procstat.cpu_seconds(server_pid) if server_pid is not None else 0.0
    times = os.times()
    ours = server + procstat.cpu_seconds(mock_pid) + sum(times[:4])
    return server, procstat.system_busy_seconds() - ours


def wait_quiet(mock_pid: int, limit_s: float) -> None:
    """Wait, up to ``limit_s``, until other processes use under 0.2 cores; say so if they never do.

    On a shared machine (CI, a developer's tests) this keeps a target from being
    measured while something else takes its core.
    """
    deadline = time.monotonic() + limit_s
    while True:
        before, start = cpu_snapshot(None, mock_pid)[1], time.monotonic()
        time.sleep(2.0)
        foreign = (cpu_snapshot(None, mock_pid)[1] - before) / (time.monotonic() - start)
        if foreign < 0.2:
            return
        if time.monotonic() > deadline:
            say(f"  machine still busy ({foreign:.2f} cores used by other processes); measuring anyway")
            return
        say(f"  waiting for a quiet machine ({foreign:.2f} cores used by other processes)")
