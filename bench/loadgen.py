"""Fallback saturation driver for machines without wrk.

N closed-loop keep-alive connections on one uvloop, each sending the next
request as soon as the previous answer is complete, for a fixed time. Prints
``{"requests": n, "seconds": s, "errors": e}`` as JSON on stdout.
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
    parser = argparse.ArgumentParser(description="closed-loop HTTP load for bench/run.py without wrk")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    api_key = os.environ.get("BENCH_API_KEY", "sk-bench")
    result = uvloop.run(drive(args.port, args.connections, args.seconds, api_key))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
