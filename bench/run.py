"""Benchmark llm-gateway against the upstream itself, a bare passthrough and LiteLLM.

Every target is started at once, each pinned to the server core, and visited in
turn, round after round (3 in a full run), so that the slow minutes of a shared
virtual machine are spread over all targets rather than landing on one. Each
round measures, per target:

1. requests/s at saturation: wrk with 32 connections, while the mock upstream and
   wrk share the load core; CPU per request is the target's utime + stime over
   the run / requests;
2. latency at concurrency 1 with the upstream answering at once and after 50 ms,
   each sample alternating between the upstream and the target, so the report
   gives the latency the target *adds*;
3. time to the first SSE event of a streamed answer, added likewise.

Then, once the gateway's saturation rate is known, every target is visited again,
round after round, at a fixed rate (half of that, or ``--rate``) arriving in bursts
(bench/fixed_rate.py), each run right after one against the upstream directly, for
p50/p99 and what the target adds to them.

Peak RSS (VmHWM) of each target's process tree is read at the end. Results go to
stdout and to bench/results/latest.md and latest.json.
Usage: ``.venv/bin/python bench/run.py [--quick] [--targets NAME ...] [--rate R] [--baseline REF]``;
``--baseline REF`` measures the gateway at another commit beside this one, in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import fixed_rate
import machine
import orjson
import phases
import probe
import targets
import throughput
from phases import API_KEY
from report import Run, TargetResult, markdown
from targets import HERE, LITELLM, VENV_BIN, Running

RESULTS = HERE / "results"
HARNESS_ERRORS = (targets.StartError, probe.ProbeError, OSError, subprocess.SubprocessError)


@dataclass(frozen=True)
class Settings:
    """How long each phase runs; totals per target are spread over ``rounds`` visits."""

    rounds: int
    seconds: float
    warmup_s: float
    connections: int
    samples_0ms: int
    samples_50ms: int
    samples_ttft: int
    phase_limit_s: float
    rate_seconds: float
    """Fixed-rate seconds per target, all rounds, and as much again against the upstream."""
    rate: float | None = None
    """Fixed rate in req/s; None: half the gateway's measured saturation rate."""
    burst: int = 20

    @classmethod
    def full(cls) -> Settings:
        return cls(3, 15.0, 3.0, 32, 2000, 200, 1000, 30.0, 15.0)

    @classmethod
    def quick(cls) -> Settings:
        return cls(1, 3.0, 1.0, 32, 300, 20, 200, 8.0, 3.0)

    def per_round(self) -> tuple[float, tuple[int, int, int], float]:
        """(saturation seconds, (0 ms, 50 ms, TTFT) pairs, phase time limit) for one round."""
        n = self.rounds
        samples = (-(-self.samples_0ms // n), -(-self.samples_50ms // n), -(-self.samples_ttft // n))
        return self.seconds / n, samples, self.phase_limit_s / n


def loud(message: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n{message}\n{bar}\n", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="one short round: a smoke run of about two minutes"
    )
    parser.add_argument("--targets", nargs="+", choices=list(targets.BUILDERS), default=list(targets.DEFAULT))
    parser.add_argument("--rounds", type=int, help="visits per target (default 3, quick 1)")
    parser.add_argument(
        "--seconds", type=float, help="saturation seconds per target, all rounds (default 15)"
    )
    parser.add_argument("--connections", type=int, help="wrk connections (default 32)")
    parser.add_argument(
        "--rate", type=float,
        help="fixed-rate phase in req/s (default: half the gateway's measured saturation rate; 0 skips it)",
    )  # fmt: skip
    parser.add_argument("--burst", type=int, help="fixed-rate phase: requests per burst (default 20)")
    parser.add_argument(
        "--no-litellm-setup", action="store_true", help="skip LiteLLM instead of installing it"
    )
    parser.add_argument(
        "--wait-quiet", type=float, default=0, metavar="S",
        help="before each saturation run, wait up to S seconds for other processes to use under 0.2 cores",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", metavar="REF",
        help="also measure llm-gateway at git REF (a temporary worktree), as 'llm-gateway (baseline)'",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.md and latest.json go")
    return parser.parse_args()


def baseline_checkout(stack: ExitStack, ref: str) -> None:
    """Check `ref` out in a temporary worktree and point the baseline target at its `src`."""
    folder = Path(tempfile.mkdtemp(prefix="llm-gateway-baseline-"))
    git = ("git", "-C", str(targets.ROOT))
    subprocess.run([*git, "worktree", "add", "--detach", str(folder), ref], check=True, capture_output=True)
    stack.callback(subprocess.run, [*git, "worktree", "remove", "--force", str(folder)], capture_output=True)
    os.environ[targets.BASELINE_SRC] = str(folder / "src")


def settings_from(args: argparse.Namespace) -> Settings:
    base = Settings.quick() if args.quick else Settings.full()
    return replace(
        base,
        rounds=args.rounds or base.rounds,
        seconds=args.seconds or base.seconds,
        connections=args.connections or base.connections,
        rate=args.rate,
        burst=args.burst or base.burst,
    )


def skipped_targets(args: argparse.Namespace) -> dict[str, str]:
    """Targets that cannot run here, with the reason the table will show."""
    skipped: dict[str, str] = {}
    if LITELLM in args.targets and (why := targets.ensure_litellm(not args.no_litellm_setup)):
        skipped[LITELLM] = why
    if not (VENV_BIN / "llm-gateway").exists():
        for name in (
            targets.GATEWAY,
            targets.GATEWAY_ROUTING,
            targets.GATEWAY_GOV_SQLITE,
            targets.GATEWAY_GOV_REDIS,
            targets.GATEWAY_TRACED,
        ):
            skipped[name] = "pending: .venv/bin/llm-gateway is not installed"
    return skipped


def start_all(
    stack: ExitStack, names: list[str], upstream: Running, server_core: int | None, log_dir: Path
) -> tuple[dict[str, Running], dict[str, str]]:
    """Start every target (they idle at no cost until visited); a failed start is reported, not fatal."""
    servers: dict[str, Running] = {}
    failures: dict[str, str] = {}
    for name in names:
        phases.say(f"{name}: starting")
        target = targets.build(name, upstream.port, API_KEY)
        try:
            servers[name] = stack.enter_context(
                targets.running(target, core=server_core, api_key=API_KEY, log_dir=log_dir)
            )
        except HARNESS_ERRORS as error:
            loud(f"{name} failed to start: {error}")
            failures[name] = f"failed: {str(error)[:200]}"
    return servers, failures


def measure_all(
    servers: dict[str, Running], upstream: Running, settings: Settings, load_core: int | None, wait_s: float
) -> tuple[dict[str, phases.Tally], dict[str, str]]:
    """Warm every target up, then visit them in rotating order for each round."""
    seconds, samples, limit_s = settings.per_round()
    tallies = {name: phases.Tally() for name in servers}
    failures: dict[str, str] = {}
    for name, server in servers.items():
        phases.say(f"{name}: warm-up")
        throughput.saturate(
            server.port, seconds=settings.warmup_s, connections=settings.connections, core=load_core,
            api_key=server.api_key,
        )  # fmt: skip
    names = list(servers)
    for round_ in range(settings.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            if name in failures:
                continue
            if wait_s:
                phases.wait_quiet(upstream.pid, wait_s)
            phases.say(f"round {round_ + 1}/{settings.rounds}: {name}")
            try:
                phases.saturation_round(
                    tallies[name], servers[name], upstream, seconds, settings.connections, load_core
                )
                phases.latency_round(tallies[name], servers[name], upstream.port, samples, limit_s)
            except HARNESS_ERRORS as error:
                loud(f"{name} failed: {error}")
                failures[name] = f"failed: {str(error)[:200]}"
    return tallies, failures


def rate_from(settings: Settings, tallies: dict[str, phases.Tally]) -> tuple[float, str]:
    """The fixed rate and where it came from: ``--rate``, or half the gateway's saturation rate."""
    if settings.rate is not None:
        return settings.rate, "--rate"
    for name in (targets.GATEWAY, targets.GATEWAY_GOV_SQLITE):
        tally = tallies.get(name)
        if tally is not None and tally.seconds and tally.requests > tally.errors:
            measured = (tally.requests - tally.errors) / tally.seconds
            return measured / 2, f"half of {name}'s measured {measured:,.0f} req/s"
    return 500.0, "the issue's 500 req/s: no gateway was measured at saturation"


def measure_at_rate(
    servers: dict[str, Running], upstream: Running, tallies: dict[str, phases.Tally], settings: Settings,
    rate: float, load_core: int | None, failures: dict[str, str],
) -> None:  # fmt: skip
    """Visit every target that is still healthy at the fixed rate, in rotating order, round by round."""
    seconds = settings.rate_seconds / settings.rounds
    names = [name for name in servers if name not in failures]
    for round_ in range(settings.rounds if names else 0):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            if tallies[name].at_rate_failure:
                continue
            phases.say(f"fixed rate {rate:,.0f} req/s, round {round_ + 1}/{settings.rounds}: {name}")
            try:
                phases.fixed_rate_round(
                    tallies[name], servers[name], upstream, rate, settings.burst, seconds, load_core
                )
            except HARNESS_ERRORS as error:
                # Its other figures stand; the report notes why this phase has none.
                loud(f"{name} failed at the fixed rate: {error}")
                tallies[name].at_rate_failure = str(error)[:200]


def main() -> int:
    # A SIGTERM (CI timeout, Ctrl-C in make) unwinds the ExitStack, which stops every target.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    settings = settings_from(args)
    load_core, server_core = machine.core_layout()
    if load_core is None:
        loud("Fewer than 2 cores: nothing is pinned, and server and load share the CPU. Ratios only.")
    # This process, which runs the concurrency-1 probes, stays unpinned on purpose: pinned
    # next to the mock it waits behind it for the scheduler and p99 gains milliseconds.
    if not shutil.which("wrk"):
        loud(
            "wrk not found (apt-get install wrk): using bench/loadgen.py, which caps the direct-upstream row."
        )
    if not shutil.which("hey"):
        loud("hey not found (apt-get install hey): the fixed-rate phase uses bench/loadgen.py instead.")
    skipped = skipped_targets(args)
    for name, why in skipped.items():
        if name in args.targets:
            loud(f"{name}: {why}")

    started = time.monotonic()
    log_dir = args.out / "logs"
    results: list[TargetResult] = []
    with ExitStack() as stack:
        if args.baseline:
            baseline_checkout(stack, args.baseline)
            if not any(name in targets.BASELINES for name in args.targets):
                args.targets.append(targets.GATEWAY_BASELINE)
        upstream = stack.enter_context(
            targets.running(targets.shared_mock(), core=load_core, api_key=API_KEY, log_dir=log_dir)
        )
        runnable = [name for name in args.targets if name not in skipped]
        servers, failures = start_all(stack, runnable, upstream, server_core, log_dir)
        tallies, measure_failures = measure_all(servers, upstream, settings, load_core, args.wait_quiet)
        rate, rate_source = rate_from(settings, tallies)
        if rate > 0 and servers:
            measure_at_rate(servers, upstream, tallies, settings, rate, load_core, measure_failures)
        failures |= measure_failures | skipped
        for name in args.targets:
            if name in failures:
                results.append(TargetResult(name, failure=failures[name]))
            else:
                results.append(tallies[name].result(servers[name]))

    run = Run(
        settings={
            **asdict(settings),
            "server_core": server_core,
            "load_core": load_core,
            "driver": throughput.driver_name(),
            "rate": rate,
            "rate_source": rate_source,
            "rate_driver": fixed_rate.driver_name(),
            "elapsed_s": round(time.monotonic() - started, 1),
        },
        environment=machine.describe(),
        results=results,
    )
    text = markdown(run)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(text)
    (args.out / "latest.json").write_bytes(orjson.dumps(run.to_json(), option=orjson.OPT_INDENT_2))
    phases.say(f"wrote {args.out / 'latest.md'} and latest.json in {run.settings['elapsed_s']} s")
    return 1 if any(r.failure and r.failure.startswith("failed") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
