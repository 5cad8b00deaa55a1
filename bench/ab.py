"""CPU per request of two targets, measured in many short interleaved rounds.

`run.py` visits each target a few times for several seconds; on a shared machine a busy
minute can land on one target and decide a few-percent comparison. Here both targets run
at once, pinned to the server core, and are loaded in turn for `--seconds` each, `--rounds`
times, the order swapped every round; each visit's CPU (utime + stime of the target's
process tree) is divided by the requests it served. The report gives each target's median
and the median of the per-round ratios, which cancels what a round's neighbours did to
both of its visits.

Usage: ``.venv/bin/python bench/ab.py A B [--rounds 12] [--seconds 3]`` with two names
from `targets.BUILDERS`, e.g. "llm-gateway (observability off)" "llm-gateway (traced, sampled out)".
"""

from __future__ import annotations

import argparse
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

import machine
import procstat
import run
import targets
import throughput
from phases import API_KEY

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--baseline", metavar="REF", help="the commit the baseline targets run")
    args = parser.parse_args()
    load_core, server_core = machine.core_layout()
    log_dir = HERE / "results" / "logs"
    with ExitStack() as stack:
        if args.baseline:
            run.baseline_checkout(stack, args.baseline)
        mock = stack.enter_context(
            targets.running(targets.shared_mock(), core=load_core, api_key=API_KEY, log_dir=log_dir)
        )
        pair = [
            stack.enter_context(
                targets.running(
                    targets.build(name, mock.port, API_KEY),
                    core=server_core,
                    api_key=API_KEY,
                    log_dir=log_dir,
                )
            )
            for name in (args.first, args.second)
        ]
        for server in pair:  # warm-up, not counted
            throughput.saturate(
                server.port, seconds=1, connections=args.connections, core=load_core, api_key=server.api_key
            )
        costs: list[list[float]] = [[], []]
        for round_number in range(args.rounds):
            order = (0, 1) if round_number % 2 == 0 else (1, 0)
            for index in order:
                server = pair[index]
                before = procstat.cpu_seconds(server.pid)
                done = throughput.saturate(
                    server.port,
                    seconds=args.seconds,
                    connections=args.connections,
                    core=load_core,
                    api_key=server.api_key,
                )
                spent = procstat.cpu_seconds(server.pid) - before
                if done.errors or not done.requests:
                    sys.exit(f"{server.target.name}: {done.errors} errors, {done.requests} requests")
                costs[index].append(spent / done.requests * 1e6)
            print(f"round {round_number + 1}: {costs[0][-1]:.0f} / {costs[1][-1]:.0f} µs", file=sys.stderr)
    ratios = [b / a for a, b in zip(*costs, strict=True)]
    for name, values in zip((args.first, args.second), costs, strict=True):
        spread = f"min {min(values):.0f}, max {max(values):.0f}"
        print(f"{name}: median {statistics.median(values):.0f} µs/req ({spread})")
    print(f"second / first: median {statistics.median(ratios) - 1:+.1%} over {len(ratios)} rounds")


if __name__ == "__main__":
    main()
