"""Latency at a fixed request rate arriving in bursts, driven by hey (or bench/loadgen.py without it).

Saturation shows what a core can serve; it says little about the tail a caller sees
at a load the server can carry. Here ``burst`` workers each send one request every
``burst / rate`` seconds on their own ticker, started together, so requests arrive in
bursts of ``burst`` (``hey -c 20 -q 25`` is 500 req/s in bursts of 20). A pause in the
server (garbage collection, a blocking call, a new connection) then shows up in p99
even when the mean load is light.

hey (``apt-get install hey``) reports each request's time in whole 0.1 ms; the fallback
driver, a small uvloop client in bench/loadgen.py, reports microseconds but costs more
CPU on the load core. hey's CSV lists answers only: a request that failed at the socket
is missing rather than counted, so a target that drops connections shows up as a rate
achieved below the one asked for.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
from probe import CHAT_BODY

HERE = Path(__file__).resolve().parent
WARMUP_S = 0.25
"""Answers that finish this early in a run are dropped: they include the connects."""


@dataclass(frozen=True)
class RateRun:
    """One fixed-rate run: each good answer's time in ns, the failures, and how long it ran."""

    latencies_ns: list[int]
    errors: int
    seconds: float

    @property
    def achieved_rps(self) -> float:
        return (len(self.latencies_ns) + self.errors) / self.seconds if self.seconds else 0.0


def driver_name() -> str:
    return "hey" if shutil.which("hey") else "loadgen.py"


def burst_load(
    port: int, *, rate: float, burst: int, seconds: float, core: int | None, api_key: str
) -> RateRun:
    """Load 127.0.0.1:port at ``rate`` req/s in bursts of ``burst`` for ``seconds``."""
    pin = ["taskset", "-c", str(core)] if core is not None else []
    limit = seconds + 30
    if shutil.which("hey"):
        command = [
            *pin, "hey", "-z", f"{seconds}s", "-c", str(burst), "-q", f"{rate / burst:.3f}",
            "-cpus", "1", "-t", "10", "-m", "POST", "-T", "application/json",
            "-H", f"Authorization: Bearer {api_key}", "-d", orjson.dumps(CHAT_BODY).decode(),
            "-o", "csv", f"http://127.0.0.1:{port}/v1/chat/completions",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, check=True)
        return parse_hey_csv(done.stdout, seconds)
    command = [
        *pin, sys.executable, str(HERE / "loadgen.py"), "--port", str(port), "--seconds", str(seconds),
        "--rate", str(rate), "--connections", str(burst), "--warmup", str(WARMUP_S),
    ]  # fmt: skip
    env = {**os.environ, "BENCH_API_KEY": api_key}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=limit, check=True)
    result = orjson.loads(done.stdout)
    return RateRun(result["latencies_ns"], result["errors"], result["seconds"])


def parse_hey_csv(output: str, seconds: float) -> RateRun:
    """hey's ``-o csv`` rows: response-time (s) first, status code and offset (s) last."""
    rows = list(csv.reader(io.StringIO(output)))
    if not rows or rows[0][:1] != ["response-time"]:
        raise RuntimeError(f"cannot read hey output:\n{output[:500]}")
    latencies: list[int] = []
    errors = 0
    last_start = WARMUP_S
    for row in rows[1:]:
        if len(row) < 8 or (start := float(row[7])) < WARMUP_S:
            continue
        last_start = max(last_start, start)
        if row[6] == "200":
            latencies.append(round(float(row[0]) * 1e9))
        else:
            errors += 1
    # The span over which the kept requests were sent, for the rate achieved; hey's last
    # ticks can fall a little past -z.
    return RateRun(latencies, errors, max(last_start, seconds) - WARMUP_S)
