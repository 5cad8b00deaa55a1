"""The bare-ASGI floor: uvicorn (httptools, uvloop) and an ASGI app with no framework.

The app reads the body, parses and re-serialises it with orjson, and forwards it through
bench/upstream_pool.py, the same pool as the asyncio floor, so the difference between the
two floors is what uvicorn's ASGI layer costs; the difference between this floor and the
FastAPI passthrough is what Starlette, FastAPI and aiohttp cost. SSE answers are sent on
as ``more_body`` messages as they arrive. No lifespan: the pool is made on the first
request, when there is a running loop.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn
from upstream_pool import Exchange, UpstreamPool

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BAD_JSON = b'{"error":"invalid json"}'


class FloorApp:
    """POST anything: the body goes to the upstream's chat completions, its answer comes back."""

    def __init__(self, upstream: str) -> None:
        self._url = upstream.rstrip("/") + "/chat/completions"
        self._pool: UpstreamPool | None = None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = await _read_body(receive)
        try:
            body = orjson.dumps(orjson.loads(raw))
        except orjson.JSONDecodeError:
            await _answer(send, 400, b"application/json", BAD_JSON)
            return
        if self._pool is None:
            self._pool = UpstreamPool(self._url)
        exchange = Exchange()
        self._pool.post(body, exchange)
        status, content_type, streamed = await exchange.response()
        if not streamed:
            await _answer(send, status, content_type, await exchange.read())
            return
        headers = [(b"content-type", content_type)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        async for piece in exchange.pieces():
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    pieces = [body]
    while message.get("more_body"):
        message = await receive()
        pieces.append(message.get("body", b""))
    return b"".join(pieces)


async def _answer(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def from_env() -> FloorApp:
    """The app for another server (`granian --factory floor_asgi:from_env`), its upstream
    from `BENCH_UPSTREAM_URL`."""
    return FloorApp(os.environ.get("BENCH_UPSTREAM_URL", "http://127.0.0.1:18000/v1"))


def main() -> None:
    parser = argparse.ArgumentParser(description="uvicorn + bare ASGI proxy (the benchmark's floor)")
    parser.add_argument("--upstream", default="http://127.0.0.1:18000/v1", help="base URL ending in /v1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18102)
    args = parser.parse_args()
    uvicorn.run(
        FloorApp(args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
