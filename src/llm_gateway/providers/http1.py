"""One HTTP/1.1 connection to an upstream: the request head written, the answer parsed as it arrives.

Why this exists: aiohttp cost about a third of the gateway's CPU per request (docs/performance.md),
for generality a gateway's upstream exchange never uses. The exchange is narrow: one request at a
time on a keep-alive connection, a JSON or event-stream answer, never a redirect followed, never a
body decoded here. So the connection is an `asyncio.Protocol` whose bytes go straight to httptools'
C parser; the parser's callbacks fill a `Response` (status, lower-cased headers, body pieces in a
deque) and wake at most one waiting reader. A reader that finds a piece buffered takes it without
suspending. Over `HIGH_WATER` bytes buffered the socket stops being read (backpressure for a stream
whose client reads slowly) until the reader is back under `LOW_WATER`.

One `loop.call_at` handle per exchange does its timeout: the deadline of a plain answer, or the
longest silence allowed in a stream (then it moves itself on when bytes came in the meantime,
instead of being rescheduled on every read).

Failures reach the reader as three plain kinds, mapped to the gateway's errors once, at the edge
(`transport.HttpClient`): `TimeoutError`, `ConnectionError` (refused, reset, closed early) and
`ProtocolError` (bytes that are not an HTTP/1.1 answer, or break the limits on one).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import cast

import httptools

MAX_HEADER_LINE = 16 * 1024
"""The longest status line or header an upstream may send."""
MAX_HEADERS = 128
"""The most headers an upstream answer may carry."""
MAX_HEAD_BYTES = MAX_HEADERS * MAX_HEADER_LINE
"""All of a head's bytes: a head that never ends must not grow without bound either."""
HIGH_WATER = 256 * 1024
"""Body bytes buffered unread before the socket is paused."""
LOW_WATER = 64 * 1024
"""...and the level the reader must bring them under for it to be read again."""


class ProtocolError(Exception):
    """The upstream's bytes are not a valid HTTP/1.1 answer, or break the limits on one."""


def request_head(
    method: str, target: str, host: str, headers: Mapping[str, str], length: int | None
) -> bytes:
    """The request line and headers. The gateway asks for an uncompressed answer (upstream.py
    bounds what a compressed one may inflate to) unless the caller said otherwise.

    A line break inside a header name or value would let it smuggle a header of its own: it
    is refused (ValueError) by counting the line breaks, which costs less than scanning each.
    """
    lines = [f"{method} {target} HTTP/1.1\r\nhost: {host}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers.items()]
    extra = 2
    if "accept-encoding" not in headers:
        lines.append("accept-encoding: identity\r\n")
        extra += 1
    if "accept" not in headers:
        lines.append("accept: */*\r\n")
        extra += 1
    if length is not None:
        lines.append(f"content-length: {length}\r\n")
        extra += 1
    lines.append("\r\n")
    text = "".join(lines)
    breaks = len(headers) + extra + 1
    if text.count("\n") != breaks or text.count("\r") != breaks:
        raise ValueError("a request header holds a line break")
    return text.encode()


class Response:
    """One answer as it arrives: the status and headers once parsed, then the body's pieces.

    It is httptools' callback object for this exchange only (a fresh parser per exchange
    costs less than resetting one), and an async iterator of the body's pieces.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[str, str] = {}
        """Names lower-cased; a repeated header's values joined with ", "."""
        self.content_length: int | None = None
        self.head_done = False
        self.complete = False
        self.trailing = False
        self.keep_alive = False
        self.head_bytes = 0
        self.error: BaseException | None = None
        self._pieces: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None

    def on_message_begin(self) -> None:
        if self.complete:
            self.trailing = True  # bytes after the answer: the connection is not reused

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= MAX_HEADERS or len(name) + len(value) + 2 > MAX_HEADER_LINE:
            raise ProtocolError("a header over the limits")
        key = name.decode("latin-1").lower()
        text = value.decode("utf-8", "surrogateescape")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            self.headers = {}  # an interim answer (103 Early Hints): the real one follows
            return
        self.status = status
        length = self.headers.get("content-length")
        self.content_length = int(length) if length is not None else None
        self.head_done = True
        self._wake()

    def on_body(self, data: bytes) -> None:
        self._pieces.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self._connection.pause()
        self._wake()

    def on_message_complete(self) -> None:
        if self.head_done:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()  # false once the parser moves on
            self._connection.answered()
            self._wake()

    def until_close(self) -> bool:
        """Whether the body is delimited by the connection's end (no length, not chunked)."""
        return (
            self.content_length is None
            and "chunked" not in self.headers.get("transfer-encoding", "")
            and self.status not in (204, 304)
        )

    def fail(self, error: BaseException) -> None:
        if self.error is None and not self.complete:
            self.error = error
            self._wake()

    async def head(self) -> None:
        """Wait for the status and headers."""
        while not self.head_done:
            if self.error is not None:
                raise self.error
            await self._wait()

    def chunks(self) -> Response:
        return self

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._pieces:
                piece = self._pieces.popleft()
                self._buffered -= len(piece)
                if self._buffered <= LOW_WATER:
                    self._connection.resume()
                return piece
            if self.complete:
                raise StopAsyncIteration
            if self.error is not None:
                raise self.error
            await self._wait()

    async def _wait(self) -> None:
        self._waiter = self._connection.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def release(self, reuse: bool) -> None:
        """End the exchange: the connection goes back to its pool only when `reuse` and the
        answer was read to its end off the socket; otherwise it is closed."""
        self._connection.finish(reuse and self.complete and self.keep_alive and not self.trailing)


class Connection(asyncio.Protocol):
    """One upstream socket carrying one exchange at a time.

    `finished(connection, reusable)` is called once per exchange, when it ends, and `lost`
    once, when the socket is gone (the pool's bookkeeping).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        finished: Callable[[Connection, bool], None],
        lost: Callable[[Connection], None],
    ) -> None:
        self.loop = loop
        self._finished = finished
        self._lost = lost
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.exchanges = 0
        self.pooled = False
        """Whether its pool counts it (set once it is open)."""
        self.received = False
        """Whether any byte of the current exchange's answer has arrived."""
        self.idle_since = 0.0
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._silence = 0.0
        self._last = 0.0

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, head: bytes, body: bytes | None, deadline: float, silence: float) -> Response:
        """Write a request; the answer fills the returned Response. The exchange times out at
        `deadline` (loop time) or, when `silence` is set, after that long without a byte."""
        assert self.transport is not None and self.response is None
        response = self.response = Response(self)
        self.exchanges += 1
        self.received = False
        self._silence = silence
        if silence:
            self._last = self.loop.time()
            deadline = self._last + silence
        self._timer = self.loop.call_at(deadline, self._expire)
        if body:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head)
        return response

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None or response.complete:
            self.close()  # bytes nobody asked for: this connection cannot be trusted
            return
        self.received = True
        if self._silence:
            self._last = self.loop.time()
        if not response.head_done:
            response.head_bytes += len(data)
            if response.head_bytes > MAX_HEAD_BYTES:
                self._fail(ProtocolError("a head over the limits"))
                return
        try:
            response.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if response.complete:
                self.close()
            else:
                cause = exc.__context__
                self._fail(cause if isinstance(cause, ProtocolError) else ProtocolError(type(exc).__name__))

    def answered(self) -> None:
        """The answer has been read to its end: nothing is left to time out."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._silence:
            due = self._last + self._silence
            if self._paused:
                due = self.loop.time() + self._silence  # the reader is slow, not the upstream
            if due > self.loop.time():
                self._timer = self.loop.call_at(due, self._expire)
                return
        self._fail(TimeoutError())

    def _fail(self, error: BaseException) -> None:
        if self.response is not None:
            self.response.fail(error)
        self.close()

    def pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def finish(self, reusable: bool) -> None:
        if self.response is None:
            return
        self.answered()
        self.response = None
        reusable = reusable and self.usable
        if reusable:
            self.resume()
        else:
            self.close()
        self._finished(self, reusable)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.answered()
        response = self.response
        if response is not None and not response.complete:
            if response.head_done and exc is None and response.until_close():
                response.complete = True
                response._wake()
            else:
                response.fail(ConnectionError("the upstream closed the connection"))
        self._lost(self)
