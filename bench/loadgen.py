"""Fallback load driver for machines without wrk (saturation) or hey (fixed rate).

Saturation: N closed-loop keep-alive connections on one uvloop, each sending the
next request as soon as the previous answer is complete, for a fixed time. Prints
``{"requests": n, "seconds": s, "errors": e}`` as JSON on stdout.

Fixed rate (``--rate R``): the N connections send together every N / R seconds, the
bursts ``hey -c N -q R/N`` makes; a connection still waiting at a tick skips it, as a
hey worker does. Prints ``{"latencies_ns": [...], "errors": e, "seconds": s}``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from functools import partial
from typing import cast

import httptools
import orjson
import uvloop
from probe import chat_request


class _Timed(asyncio.Protocol):
    """One connection for the fixed-rate mode: sends when told, records each answer's time."""

    def __init__(self, request: bytes, record_after: float) -> None:
        self._request = request
        self._record_after = record_after
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._sent_ns = 0
        self.busy = False
        self.latencies_ns: list[int] = []
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def send(self) -> None:
        if self._transport is None:
            self.errors += 1
            return
        self.busy = True
        self._sent_ns = time.perf_counter_ns()
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self.errors += 1
            self.busy = False

    def on_message_complete(self) -> None:
        self.busy = False
        if time.monotonic() < self._record_after:
            return
        if self._parser.get_status_code() == 200:
            self.latencies_ns.append(time.perf_counter_ns() - self._sent_ns)
        else:
            self.errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self.busy:
            self.errors += 1
            self.busy = False


async def drive_rate(
    port: int, connections: int, seconds: float, rate: float, warmup: float, api_key: str
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    request = chat_request(port, api_key, stream=False)
    start = time.monotonic()
    clients: list[_Timed] = []
    for _ in range(connections):
        _, client = await loop.create_connection(partial(_Timed, request, start + warmup), "127.0.0.1", port)
        clients.append(client)
    interval = connections / rate
    tick = start
    while tick < start + seconds:
        for client in clients:
            if not client.busy:
                client.send()
        tick += interval
        await asyncio.sleep(max(0.0, tick - time.monotonic()))
    await asyncio.sleep(0.5)
    return {
        "latencies_ns": [n for c in clients for n in c.latencies_ns],
        "errors": sum(c.errors for c in clients),
        "seconds": seconds - warmup,
    }


class _Client(asyncio.Protocol):
    """One connection that keeps exactly one request in flight until the deadline."""

    def __init__(self, request: bytes, deadline: float, finished: asyncio.Future[None]) -> None:
        self._request = request
        self._deadline = deadline
        self._finished = finished
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self.requests = 0
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self.errors += 1
            self._stop()

    def on_message_complete(self) -> None:
        if self._parser.get_status_code() == 200:
            self.requests += 1
        else:
            self.errors += 1
        if time.monotonic() >= self._deadline or self._transport is None:
            self._stop()
        else:
            self._transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self._finished.done():
            self._finished.set_result(None)

    def _stop(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def drive(port: int, connections: int, seconds: float, api_key: str) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    request = chat_request(port, api_key, stream=False)
    start = time.monotonic()
    deadline = start + seconds
    clients: list[_Client] = []
    waits: list[asyncio.Future[None]] = []
    for _ in range(connections):
        finished: asyncio.Future[None] = loop.create_future()
        _, client = await loop.create_connection(
            partial(_Client, request, deadline, finished), "127.0.0.1", port
        )
        clients.append(client)
        waits.append(finished)
    await asyncio.wait_for(asyncio.gather(*waits), timeout=seconds + 15)
    elapsed = time.monotonic() - start
    return {
        "requests": sum(c.requests for c in clients),
        "seconds": elapsed,
        "errors": sum(c.errors for c in clients),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="HTTP load for bench/run.py without wrk or hey")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, help="fixed rate in req/s, in bursts of --connections")
    parser.add_argument("--warmup", type=float, default=0.25, help="fixed rate: seconds not recorded")
    args = parser.parse_args()
    api_key = os.environ.get("BENCH_API_KEY", "sk-bench")
    if args.rate:
        timed = drive_rate(args.port, args.connections, args.seconds, args.rate, args.warmup, api_key)
        sys.stdout.write(orjson.dumps(uvloop.run(timed)).decode() + "\n")
        return
    result = uvloop.run(drive(args.port, args.connections, args.seconds, api_key))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
