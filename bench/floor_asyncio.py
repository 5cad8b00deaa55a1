"""The asyncio floor: the least a Python proxy on asyncio can cost per request.

A raw asyncio protocol on uvloop with httptools parsing the client's requests, orjson
parsing and re-serialising each body (the one parse and one serialisation any gateway
needs), and bench/upstream_pool.py forwarding it over kept-alive connections. Everything
runs in the parsers' callbacks: no task, future or framework object per request. SSE
answers are relayed chunk by chunk as they arrive. It authenticates nothing and routes
nothing, so it is the floor of what a gateway written on asyncio could reach; docs and
the issue quote it at 30-37 µs a request, against 330-425 µs for the FastAPI passthrough.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import deque
from http import HTTPStatus
from typing import cast

import httptools
import orjson
import uvloop
from upstream_pool import UpstreamPool

REASONS = {s.value: f"{s.value} {s.phrase}".encode() for s in HTTPStatus}


class ClientConnection(asyncio.Protocol):
    """One client connection; also the Sink of the upstream response it is waiting for.

    Requests are answered in order, one at a time: a pipelined request waits in a queue
    until the one before it is complete.
    """

    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._body: list[bytes] = []
        self._queue: deque[tuple[bytes, bool]] = deque()
        self._keep_alive = True
        self._busy = False
        self._streamed = False
        self._status, self._content_type = 200, b""
        self._pieces: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._answer(400, b'{"error":"bad request"}', keep_alive=False)

    def on_message_begin(self) -> None:
        self._body = []

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._queue.append((b"".join(self._body), self._parser.should_keep_alive()))
        if not self._busy:
            self._next()

    def _next(self) -> None:
        while self._queue and not self._busy:
            raw, self._keep_alive = self._queue.popleft()
            try:
                body = orjson.dumps(orjson.loads(raw))
            except orjson.JSONDecodeError:
                self._answer(400, b'{"error":"invalid json"}', self._keep_alive)
                continue
            self._busy = True
            self._pool.post(body, self)

    # The Sink side: the upstream's answer, relayed.
    def head(self, status: int, content_type: bytes, streamed: bool) -> None:
        self._streamed = streamed
        if streamed:
            self._write(
                b"HTTP/1.1 %s\r\ncontent-type: %s\r\ntransfer-encoding: chunked\r\n\r\n"
                % (REASONS.get(status, b"%d" % status), content_type)
            )
        else:
            self._status, self._content_type, self._pieces = status, content_type, []

    def body(self, data: bytes) -> None:
        if self._streamed:
            self._write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self._pieces.append(data)

    def done(self) -> None:
        if self._streamed:
            self._write(b"0\r\n\r\n")
            self._finish(self._keep_alive)
        else:
            self._answer(self._status, b"".join(self._pieces), self._keep_alive, self._content_type)

    def failed(self, error: Exception) -> None:
        if self._streamed:
            self._finish(keep_alive=False)
        else:
            self._answer(502, b'{"error":"upstream failed"}', keep_alive=False)

    def _answer(
        self, status: int, body: bytes, keep_alive: bool, content_type: bytes = b"application/json"
    ) -> None:
        self._write(
            b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
            % (REASONS.get(status, b"%d" % status), content_type, len(body), body)
        )
        self._finish(keep_alive)

    def _finish(self, keep_alive: bool) -> None:
        self._busy, self._streamed = False, False
        if not keep_alive and self._transport is not None:
            self._transport.close()
            self._queue.clear()
        self._next()

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)


async def serve(upstream: str, host: str, port: int) -> None:
    pool = UpstreamPool(upstream.rstrip("/") + "/chat/completions")
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ClientConnection(pool), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="asyncio + httptools proxy (the benchmark's floor)")
    parser.add_argument("--upstream", default="http://127.0.0.1:18000/v1", help="base URL ending in /v1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18101)
    args = parser.parse_args()
    uvloop.run(serve(args.upstream, args.host, args.port))


if __name__ == "__main__":
    main()
