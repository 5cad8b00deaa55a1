"""A keep-alive HTTP/1.1 connection pool to the mock upstream, on asyncio protocols and httptools.

The two floors of the benchmark (bench/floor_asyncio.py and bench/floor_asgi.py) share it,
so the difference between them is the server side alone. It is as small as an upstream
client can be: the request head is built once, idle connections are kept in a LIFO list
(the warmest socket first), the response is parsed by httptools' C parser in the
protocol's own callbacks, and a request on an idle connection creates no task, future or
timer. Only opening a new connection (at warm-up, or when concurrency grows) awaits.

It forwards one route to one plain-HTTP host and has no timeouts, TLS, proxies or retries:
it measures the least an upstream call can cost, it is not a client to build on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools


class Sink(Protocol):
    """Where one upstream response goes, as the parser sees it."""

    def head(self, status: int, content_type: bytes, streamed: bool) -> None: ...

    def body(self, data: bytes) -> None: ...

    def done(self) -> None: ...

    def failed(self, error: Exception) -> None: ...


class UpstreamPool:
    """POSTs to one URL over reused connections; each response is fed to the caller's Sink."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._head = (
            f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
            "content-type: application/json\r\ncontent-length: "
        ).encode()
        self._idle: list[_Connection] = []

    def post(self, body: bytes, sink: Sink) -> None:
        """Send ``body``; the answer arrives through ``sink``, perhaps before this returns."""
        request = b"%s%d\r\n\r\n%s" % (self._head, len(body), body)
        if self._idle:
            self._idle.pop().send(request, sink)
        else:
            asyncio.get_running_loop().create_task(self._connect(request, sink))

    async def _connect(self, request: bytes, sink: Sink) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError as error:
            sink.failed(error)
            return
        connection.send(request, sink)

    def release(self, connection: _Connection) -> None:
        self._idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)


class _Connection(asyncio.Protocol):
    """One upstream socket carrying one request at a time."""

    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._sink: Sink | None = None
        self._content_type = b"application/json"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes, sink: Sink) -> None:
        if self._transport is None:
            sink.failed(ConnectionError("upstream connection closed"))
            return
        self._sink = sink
        self._transport.write(request)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(error)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self._content_type = value

    def on_headers_complete(self) -> None:
        if self._sink is not None:
            streamed = self._content_type.startswith(b"text/event-stream")
            self._sink.head(self._parser.get_status_code(), self._content_type, streamed)

    def on_body(self, data: bytes) -> None:
        if self._sink is not None:
            self._sink.body(data)

    def on_message_complete(self) -> None:
        sink, self._sink = self._sink, None
        self._content_type = b"application/json"
        if self._parser.should_keep_alive() and self._transport is not None:
            self._pool.release(self)
        elif self._transport is not None:
            self._transport.close()
        if sink is not None:
            sink.done()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._pool.forget(self)
        self._fail(exc or ConnectionError("upstream closed the connection"))

    def _fail(self, error: Exception) -> None:
        sink, self._sink = self._sink, None
        if self._transport is not None:
            self._transport.close()
        if sink is not None:
            sink.failed(error)


class Exchange:
    """A Sink for async code (the ASGI floor): await the head, then the body or its pieces.

    Pieces are buffered and one future at a time wakes the reader, so a non-streamed
    answer that arrives in one read costs two futures in all.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._head: asyncio.Future[tuple[int, bytes, bool]] = self._loop.create_future()
        self._pieces: deque[bytes] = deque()
        self._finished = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None

    def head(self, status: int, content_type: bytes, streamed: bool) -> None:
        self._head.set_result((status, content_type, streamed))

    def body(self, data: bytes) -> None:
        self._pieces.append(data)
        self._wake()

    def done(self) -> None:
        self._finished = True
        self._wake()

    def failed(self, error: Exception) -> None:
        self._error = error
        if not self._head.done():
            self._head.set_exception(error)
        self._wake()

    async def response(self) -> tuple[int, bytes, bool]:
        """(status, content type, whether it is an SSE stream)."""
        return await self._head

    async def read(self) -> bytes:
        """The whole body."""
        return b"".join([piece async for piece in self.pieces()])

    async def pieces(self) -> AsyncIterator[bytes]:
        """The body as it arrives, until the response is complete."""
        while True:
            while self._pieces:
                yield self._pieces.popleft()
            if self._error is not None:
                raise self._error
            if self._finished:
                return
            self._waiter = self._loop.create_future()
            await self._waiter

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
