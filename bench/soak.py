"""A soak: fixed moderate load with streams, errors and client disconnects mixed in, for
``--minutes`` (issue #14: RSS grows by at most 5% after warm-up over 30 minutes).

Starts the mock upstream and one target as bench/run.py does, then sends ``--rate``
requests per second from one asyncio driver, each on its own keep-alive connection drawn
from a small pool, in this mix: 60% plain chat completions, 20% streams read to the end,
10% streams the client abandons after the first bytes (the connection is closed: the
gateway must cancel the upstream call and release what it held), 5% requests for a model
that does not exist (404) and 5% malformed JSON (400). The target's RSS is sampled every
``--sample`` seconds; growth is measured from the end of the warm-up (the first
``--warmup`` minutes, or a fifth of the run) to the end.

Usage: ``.venv/bin/python bench/soak.py [--target "llm-gateway (governance, SQLite)"]
[--minutes 30] [--rate 100]``. Not part of ``make bench``: it takes as long as it says.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from contextlib import ExitStack

import procstat
import targets
from phases import API_KEY
from run import RESULTS

CHAT = b'{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}'
STREAM = (
    b'{"model":"bench-model","messages":[{"role":"user","content":"hi"}],"stream":true,'
    b'"stream_options":{"include_usage":true}}'
)
UNKNOWN = b'{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}'
MALFORMED = b'{"model":"bench-model","messages":['
MIX = (("chat", 60), ("stream", 20), ("abandon", 10), ("unknown", 5), ("malformed", 5))


def request(port: int, key: str, body: bytes) -> bytes:
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_answer(reader: asyncio.StreamReader) -> int:
    """Read one whole answer (Content-Length or chunked); its status."""
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status
    while (size := int((await reader.readline()).strip(), 16)) > 0:
        await reader.readexactly(size + 2)
    await reader.readline()
    return status


class Driver:
    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.payloads = {
            "chat": request(port, key, CHAT),
            "stream": request(port, key, STREAM),
            "abandon": request(port, key, STREAM),
            "unknown": request(port, key, UNKNOWN),
            "malformed": request(port, key, MALFORMED),
        }
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.counts: dict[str, int] = {}
        self.failures = 0

    async def one(self, kind: str) -> None:
        reader, writer = (
            self.idle.pop() if self.idle else await asyncio.open_connection("127.0.0.1", self.port)
        )
        try:
            writer.write(self.payloads[kind])
            if kind == "abandon":
                await reader.readline()  # the status line: the stream has begun
                writer.close()
                self.counts[kind] = self.counts.get(kind, 0) + 1
                return
            status = await read_answer(reader)
            expected = {"unknown": 404, "malformed": 400}.get(kind, 200)
            if status != expected:
                self.failures += 1
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.idle.append((reader, writer))
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            self.failures += 1
            writer.close()


async def soak(
    server: targets.Running, minutes: float, rate: float, warmup: float, sample: float, only: str | None
) -> int:
    driver = Driver(server.port, server.api_key)
    kinds = [only] if only else [kind for kind, weight in MIX for _ in range(weight)]
    rng = random.Random(0)
    started = time.monotonic()
    end = started + minutes * 60
    samples: list[tuple[float, float]] = []
    running: set[asyncio.Task[None]] = set()
    next_sample = started
    sent = 0
    while (now := time.monotonic()) < end:
        due = started + sent / rate
        if due > now:
            await asyncio.sleep(due - now)
        task = asyncio.create_task(driver.one(rng.choice(kinds)))
        running.add(task)
        task.add_done_callback(running.discard)
        sent += 1
        if time.monotonic() >= next_sample:
            samples.append(((time.monotonic() - started) / 60, procstat.rss_mb(server.pid)))
            print(f"{samples[-1][0]:6.1f} min  RSS {samples[-1][1]:.1f} MiB  sent {sent}", flush=True)
            next_sample += sample
    await asyncio.gather(*running, return_exceptions=True)
    samples.append(((time.monotonic() - started) / 60, procstat.rss_mb(server.pid)))
    after_warmup = next(rss for at, rss in samples if at >= warmup)
    growth = samples[-1][1] / after_warmup - 1
    print(
        f"\n{server.target.name}: {sent} requests in {minutes:g} min at {rate:g}/s, {driver.failures} failed"
    )
    print(f"  by kind: {driver.counts}")
    print(
        f"  RSS after warm-up ({warmup:g} min) {after_warmup:.1f} MiB, at the end {samples[-1][1]:.1f} MiB, "
    )
    print(f"  peak {max(rss for _, rss in samples):.1f} MiB: growth {growth:+.1%} (target ≤ +5%)")
    return 0 if growth <= 0.05 and driver.failures == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", default=targets.GATEWAY_GOV_SQLITE)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--warmup", type=float, help="minutes before RSS is measured (default: a fifth)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument(
        "--only", choices=[kind for kind, _ in MIX], help="one kind of request, to find a leak"
    )
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else args.minutes / 5
    logs = RESULTS / "logs"
    with ExitStack() as stack:
        upstream = stack.enter_context(
            targets.running(targets.shared_mock(), core=None, api_key=API_KEY, log_dir=logs)
        )
        target = targets.build(args.target, upstream.port, API_KEY)
        server = stack.enter_context(targets.running(target, core=None, api_key=API_KEY, log_dir=logs))
        return asyncio.run(soak(server, args.minutes, args.rate, warmup, args.sample, args.only))


if __name__ == "__main__":
    sys.exit(main())
