"""What the access log, the metrics and a sampled-out tracer cost a request, in-process: the
whole ASGI app (middleware, endpoint, pipeline, the embedded mock provider), no server, no
socket, so the difference between the two apps is observability's and little else.

Two apps run in one process: every observability part off (`logging.access: false`,
`metrics.enabled: false`, no `tracing:`) and all of it on (the defaults plus
`tracing: {sample_ratio: 0}`), as `bench/gateway-quiet.yaml` and `bench/gateway-traced.yaml`
configure them, each with a master key (so with governance's spend log, in SQLite in
memory). Logging is set up as `serve` sets it up (the writer thread, JSON lines), writing
to /dev/null. Rounds alternate between the apps; each round's CPU time (every thread's, the
writer's included, with a pause at the end for it to finish the round's lines) is divided
by its requests, and the fastest round of each is kept. It does not see what the HTTP
server adds around each middleware layer; `bench/ab.py` measures the served gateway.

Usage: ``.venv/bin/python bench/observability_cost.py [--requests 2000] [--rounds 7]``;
run it with ``PYTHONPATH=<checkout>/src`` to measure another checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # tests.stubs

from tests.stubs import mock_config

from llm_gateway.app import create_app
from llm_gateway.observability.logging import setup_logging

BODY = orjson.dumps({"model": "mock", "messages": [{"role": "user", "content": "Say hello."}]})
MASTER_KEY = "sk-bench-observability"
HEADERS = [
    (b"host", b"127.0.0.1"),
    (b"authorization", f"Bearer {MASTER_KEY}".encode()),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]
PAUSE = 0.12
"""Seconds at the end of a round: the access batch timer fires and the writer writes."""


class Rig:
    def __init__(self, **config: Any) -> None:
        self.app = create_app(mock_config(master_key=MASTER_KEY, **config))

    async def request(self) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "query_string": b"",
            "root_path": "",
            "headers": HEADERS,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}

        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        if status != 200:
            raise SystemExit(f"status {status}")

    async def round(self, requests: int) -> float:
        """CPU µs per request over `requests` requests."""
        started = time.process_time()
        for _ in range(requests):
            await self.request()
        await asyncio.sleep(PAUSE)
        return (time.process_time() - started) / requests * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the log's stream for the whole run)
    setup_logging("info")
    off = Rig(logging={"access": False}, metrics={"enabled": False})
    on = Rig(tracing={"otlp_endpoint": "http://127.0.0.1:9", "sample_ratio": 0, "export_timeout": 1})
    async with off.app.router.lifespan_context(off.app), on.app.router.lifespan_context(on.app):
        await off.round(args.requests // 4)  # warm-up
        await on.round(args.requests // 4)
        costs: tuple[list[float], list[float]] = ([], [])
        for number in range(args.rounds):
            for index, rig in ((0, off), (1, on)) if number % 2 == 0 else ((1, on), (0, off)):
                costs[index].append(await rig.round(args.requests))
    quiet, full = min(costs[0]), min(costs[1])
    print(
        f"observability off {quiet:.1f} µs, on {full:.1f} µs CPU a request: "
        f"+{full - quiet:.1f} µs ({full / quiet - 1:+.1%})",
        file=sys.__stdout__,
    )


if __name__ == "__main__":
    asyncio.run(main())
