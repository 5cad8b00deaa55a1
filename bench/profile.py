"""Where a target spends its CPU at saturation: a py-spy profile summarised by frame and package.

Starts the mock upstream and one target exactly as bench/run.py does, keeps it
saturated with wrk, and samples it with ``py-spy record --format raw``. Writes
the collapsed stacks to bench/results/profile-<target>.txt (feed them to any
flame-graph tool) and prints the top self and inclusive costs, which
docs/performance.md quotes. py-spy is not a project dependency:
``.venv/bin/pip install py-spy``.

Usage: ``.venv/bin/python bench/profile.py [--target llm-gateway] [--seconds 15]``.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
from pathlib import Path

import machine
import streams
import targets
import throughput
from phases import API_KEY
from run import RESULTS
from targets import VENV_BIN


def py_spy() -> str:
    found = VENV_BIN / "py-spy"
    if found.exists():
        return str(found)
    on_path = shutil.which("py-spy")
    if on_path is None:
        sys.exit("py-spy not found: .venv/bin/pip install py-spy")
    return on_path


def _package(frame: str) -> str:
    """The top-level package of a py-spy frame like ``send (aiohttp/client_reqrep.py:1740)``."""
    location = frame.rpartition(" (")[2].rstrip(")")
    path = location.rpartition(":")[0]
    if path.startswith("<frozen") or "/" not in path:
        return path.removesuffix(".py") or "?"
    return path.split("/", 1)[0]


def _function(frame: str) -> str:
    """The frame without its line number, so that costs add up per function."""
    name, _, location = frame.rpartition(" (")
    return f"{name} ({location.rpartition(':')[0]})"


# Frames that only appear when work is handed to a thread pool (FastAPI runs every sync
# ``def`` endpoint or dependency there): the event loop's side and the worker's side.
THREAD_HANDOFF = (
    "run_in_threadpool",
    "to_thread.py",
    "run_sync_in_worker_thread",
    "WorkerThread",
    "threading.py",
)


def summarise(collapsed: Path, top: int, focus: str) -> str:
    """Self time per package and per function, time under each ``focus`` function, as markdown.

    Stacks of asyncio tasks start at the task's coroutine rather than at the
    event loop, so inclusive time is only meaningful below a known frame: the
    functions of the ``focus`` package (the target's own code).
    """
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    handoff = 0
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        # py-spy's first frame names the process; asyncio tasks' stacks start at their coroutine.
        raw = [f for f in stack.split(";") if f.strip() and not f.startswith("process ")]
        if not raw:
            continue
        frames = [_function(f) for f in raw]
        total += samples
        own[frames[-1]] += samples
        packages[_package(raw[-1])] += samples
        for frame in {f for f, r in zip(frames, raw, strict=True) if _package(r) == focus}:
            inclusive[frame] += samples
        if any(marker in r for r in raw for marker in THREAD_HANDOFF):
            handoff += samples
    if not total:
        return "no samples"

    def table(title: str, counts: collections.Counter[str]) -> list[str]:
        rows = [f"| {title} | share |", "|---|--:|"]
        rows += [f"| `{name}` | {n / total:.1%} |" for name, n in counts.most_common(top)]
        return [*rows, ""]

    return "\n".join(
        [
            f"{total} samples holding the GIL; {handoff / total:.1%} of them in thread-pool handoffs.",
            "",
            *table("self time by package", packages),
            *table("self time by function", own),
            *table(f"time under each {focus} function", inclusive),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--target", choices=list(targets.BUILDERS), default=targets.GATEWAY)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--focus", default="llm_gateway", help="package whose functions get inclusive time")
    parser.add_argument("--stream", type=int, default=0, help="profile streams of N content chunks instead")
    args = parser.parse_args()
    script = "stream.lua" if args.stream else "chat.lua"
    spy = py_spy()
    load_core, server_core = machine.core_layout()
    log_dir = RESULTS / "logs"
    RESULTS.mkdir(parents=True, exist_ok=True)
    with targets.running(targets.shared_mock(), core=load_core, api_key=API_KEY, log_dir=log_dir) as upstream:
        if args.stream:
            streams.set_pieces(upstream.port, args.stream)
        target = targets.build(args.target, upstream.port, API_KEY)
        collapsed = RESULTS / f"profile-{target.slug}{'-stream' if args.stream else ''}.txt"
        with targets.running(target, core=server_core, api_key=API_KEY, log_dir=log_dir) as server:
            throughput.saturate(
                server.port, seconds=3, connections=32, core=load_core, api_key=server.api_key, script=script
            )
            command = [
                spy, "record", "--pid", str(server.pid), "--duration", str(int(args.seconds)),
                "--rate", str(args.rate), "--format", "raw", "--output", str(collapsed),
                # Only samples holding the GIL (idle pool threads are not work), without
                # pausing the target, which otherwise loses two thirds of its throughput.
                "--subprocesses", "--gil", "--nonblocking",
            ]  # fmt: skip
            spy_process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                # wrk outlasts the sampling window a little, so every sample is under full load.
                load = throughput.saturate(
                    server.port,
                    seconds=args.seconds + 2,
                    connections=32,
                    core=load_core,
                    api_key=server.api_key,
                    script=script,
                )
            finally:
                _, spy_errors = spy_process.communicate(timeout=args.seconds + 60)
            if spy_process.returncode != 0:
                sys.exit(f"py-spy failed: {spy_errors.decode(errors='replace')}")
    print(f"{target.name}: {load.rps:,.0f} req/s while sampled", file=sys.stderr)
    report = summarise(collapsed, args.top, args.focus)
    (collapsed.with_suffix(".md")).write_text(report + "\n")
    print(report)
    print(f"\ncollapsed stacks: {collapsed}", file=sys.stderr)


if __name__ == "__main__":
    main()
