"""Requests per second at saturation, driven by wrk (or bench/loadgen.py without it).

wrk is a C load generator: on the load core it costs a fraction of what a
Python driver would, so the server under test saturates its own core long
before the driver does. Without wrk the harness falls back to a small asyncio
driver that is good enough for Python servers but flattens the ceiling of the
direct-upstream row.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
_UNITS = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}


@dataclass(frozen=True)
class Throughput:
    """One saturation run: how many requests finished, and how many were not 2xx."""

    requests: int
    seconds: float
    errors: int
    driver: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def driver_name() -> str:
    return "wrk" if shutil.which("wrk") else "loadgen.py"


def saturate(
    port: int, *, seconds: float, connections: int, core: int | None, api_key: str, script: str = "chat.lua"
) -> Throughput:
    """Load 127.0.0.1:port for ``seconds`` (whole seconds with wrk) with ``connections`` connections;
    ``script`` names the wrk script in bench/ (``stream.lua``: streamed answers, wrk only)."""
    pin = ["taskset", "-c", str(core)] if core is not None else []
    env = {**os.environ, "BENCH_API_KEY": api_key}
    limit = seconds + 30
    if shutil.which("wrk"):
        command = [
            *pin,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(HERE / script),
            f"http://127.0.0.1:{port}",
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=limit, check=True)
        return parse_wrk(done.stdout)
    if script != "chat.lua":
        raise RuntimeError(f"{script} needs wrk (apt-get install wrk)")
    command = [
        *pin,
        sys.executable,
        str(HERE / "loadgen.py"),
        "--port",
        str(port),
        "--connections",
        str(connections),
        "--seconds",
        str(seconds),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=limit, check=True)
    result = orjson.loads(done.stdout)
    return Throughput(result["requests"], result["seconds"], result["errors"], "loadgen.py")


def parse_wrk(output: str) -> Throughput:
    """Read the summary wrk prints; socket errors and non-2xx answers both count as errors."""
    summary = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if summary is None:
        raise RuntimeError(f"cannot read wrk output:\n{output}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[summary.group(3)]
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Throughput(int(summary.group(1)), float(summary.group(2)) * scale, errors, "wrk")
