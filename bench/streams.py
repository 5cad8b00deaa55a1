"""CPU per relayed stream chunk on long streams (issue #14: no more than the passthrough's).

Starts the mock upstream and the targets as bench/run.py does (each target pinned to the
server core, wrk on the load core), makes the mock's streams ``--pieces`` content chunks
long (500 by default, plus the role, finish and usage chunks and ``[DONE]``), and for each
concurrency (16 and 256) visits the targets in turn, ``--rounds`` times in alternating
order, saturating each with streamed requests for ``--seconds``. CPU per chunk is the
target's own CPU time over the chunks it relayed (whole streams wrk read to the end times
the events in each); the ratio to ``passthrough (aiohttp)`` is the figure the issue asks for.

The mock writes a stream's events back to back, one write each, as fast as the proxy reads
them: a proxy that forwards the bytes it receives (the passthrough) then relays several
events per read, while one that parses each event does the work per event. Real streams
arrive a token at a time, which favours neither; this measures the per-event cost at its
worst for the gateway.

Usage: ``.venv/bin/python bench/streams.py [--targets ...] [--pieces 500] [--seconds 5]
[--rounds 2] [--connections 16 256] [--baseline REF]``. Needs wrk.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import urllib.request
from contextlib import ExitStack

import machine
import procstat
import run
import targets
import throughput
from phases import API_KEY
from run import RESULTS

DEFAULT_TARGETS = (targets.FLOOR, targets.GATEWAY, targets.GATEWAY_GOV_SQLITE)
EXTRA_EVENTS = 4
"""Events in a stream besides its content chunks: the role chunk, the finish chunk, the
usage chunk and ``[DONE]``."""


def set_pieces(port: int, n: int) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/_mock/pieces", data=f'{{"n": {n}}}'.encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        answer.read()


def measure(
    server: targets.Running, seconds: float, connections: int, load_core: int | None
) -> tuple[int, float]:
    """(streams finished, CPU seconds the server spent) over one saturation run."""
    before = procstat.cpu_seconds(server.pid)
    run = throughput.saturate(
        server.port, seconds=seconds, connections=connections, core=load_core,
        api_key=server.api_key, script="stream.lua",
    )  # fmt: skip
    spent = procstat.cpu_seconds(server.pid) - before
    if run.errors:
        print(f"!!! {server.target.name}: {run.errors} errors at c={connections}", file=sys.stderr)
    return run.requests - run.errors, spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--targets", nargs="+", default=list(DEFAULT_TARGETS))
    parser.add_argument("--pieces", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--baseline", metavar="REF", help='also run "llm-gateway (baseline)" at REF')
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench/streams.py needs wrk (apt-get install wrk)")
    load_core, server_core = machine.core_layout()
    logs = RESULTS / "logs"
    events = args.pieces + EXTRA_EVENTS
    totals: dict[tuple[str, int], list[float]] = {}
    with ExitStack() as stack:
        if args.baseline:
            run.baseline_checkout(stack, args.baseline)
            args.targets.append(targets.GATEWAY_BASELINE)
        upstream = stack.enter_context(
            targets.running(targets.shared_mock(), core=load_core, api_key=API_KEY, log_dir=logs)
        )
        built = [targets.build(name, upstream.port, API_KEY) for name in args.targets]
        servers = [
            stack.enter_context(targets.running(target, core=server_core, api_key=API_KEY, log_dir=logs))
            for target in built
        ]
        set_pieces(upstream.port, args.pieces)
        for connections in args.connections:
            for round_index in range(args.rounds):
                order = servers if round_index % 2 == 0 else servers[::-1]
                for server in order:
                    streams, cpu = measure(server, args.seconds, connections, load_core)
                    tally = totals.setdefault((server.target.name, connections), [0.0, 0.0])
                    tally[0] += streams
                    tally[1] += cpu
    print(f"\nCPU per relayed chunk, streams of {args.pieces} content chunks ({events} events):\n")
    print("| target | c | streams | CPU µs per chunk | x passthrough |")
    print("|---|--:|--:|--:|--:|")
    for connections in args.connections:
        base = totals.get((targets.FLOOR, connections))
        base_us = base[1] / (base[0] * events) * 1e6 if base and base[0] else None
        for name in args.targets:
            streams, cpu = totals[(name, connections)]
            per_chunk = cpu / (streams * events) * 1e6 if streams else float("nan")
            ratio = f"{per_chunk / base_us:.2f}x" if base_us else "-"
            print(f"| {name} | {connections} | {int(streams)} | {per_chunk:.1f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
