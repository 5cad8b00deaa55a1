"""A fast OpenAI-compatible mock upstream for the benchmark.

Every proxy under test forwards to this server, so it must never be the
bottleneck: it is a raw asyncio protocol on uvloop with httptools parsing,
answers from precomputed bytes, and creates no task when there is no delay.
One process on one core serves several times what any Python proxy can send.

Routes:
    POST /v1/chat/completions   a fixed chat.completion, or SSE chunks when
                                the body says ``"stream": true``
    GET  /v1/models             one model, ``bench-model``
    POST /_mock/delay           ``{"ms": 50}`` sets the artificial delay, so
                                the harness can switch it without restarting
                                the proxies that point here
    POST /_mock/pieces          ``{"n": 500}`` sets how many content chunks a
                                stream carries (default 3; bench/streams.py)
    GET  /_mock/stats           ``{"requests": n}`` chat requests served, so the
                                harness can check that a proxy really forwarded

The delay is applied before the response, or before the first SSE chunk.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any, cast

import httptools
import orjson
import uvloop

MODEL = "bench-model"
CREATED = 1_700_000_000
USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
STREAM_PIECES = ("Hello", " from", " mock")

CHAT_BODY = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(STREAM_PIECES)},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
)
MODELS_BODY = orjson.dumps(
    {"object": "list", "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "mock"}]}
)


def _chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _sse_events(include_usage: bool, pieces: tuple[str, ...] = STREAM_PIECES) -> list[bytes]:
    """The SSE events of one streamed answer, each framed as one HTTP chunk."""
    chunks = [_chunk({"role": "assistant", "content": ""}, None)]
    chunks += [_chunk({"content": piece}, None) for piece in pieces]
    chunks.append(_chunk({}, "stop"))
    if include_usage:
        chunks.append({**_chunk({}, None), "choices": [], "usage": USAGE})
    events = [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
    return [b"%x\r\n%s\r\n" % (len(e), e) for e in events] + [b"0\r\n\r\n"]


SSE_PLAIN = _sse_events(include_usage=False)
SSE_WITH_USAGE = _sse_events(include_usage=True)


def _head(status: str, content_type: bytes, length: int | None, keep_alive: bool) -> bytes:
    framing = b"transfer-encoding: chunked" if length is None else b"content-length: %d" % length
    connection = b"" if keep_alive else b"connection: close\r\n"
    return b"HTTP/1.1 %s\r\ncontent-type: %s\r\n%s\r\n%s\r\n" % (
        status.encode(),
        content_type,
        framing,
        connection,
    )


def _json(status: str, body: bytes, keep_alive: bool) -> bytes:
    return _head(status, b"application/json", len(body), keep_alive) + body


class MockState:
    """What the whole server shares: the current delay and a request counter."""

    def __init__(self, delay_ms: float) -> None:
        self.delay_s = delay_ms / 1000
        self.chat_requests = 0
        self.streams = {False: SSE_PLAIN, True: SSE_WITH_USAGE}
        """A stream's events, without and with the usage chunk (`/_mock/pieces` rebuilds them)."""

    def set_pieces(self, n: int) -> None:
        pieces = tuple(f" w{i}" for i in range(n))  # one short word per chunk, like a token
        self.streams = {False: _sse_events(False, pieces), True: _sse_events(True, pieces)}


class MockProtocol(asyncio.Protocol):
    """One client connection.

    Requests are answered in order: with no delay the answer is written from
    the parser callback itself; with a delay each answer waits for the one
    before it, so pipelined requests cannot be reordered.
    """

    def __init__(self, state: MockState) -> None:
        self._state = state
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body: list[bytes] = []
        self._pending: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._pending is not None:
            self._pending.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(_json("400 Bad Request", b'{"error":"bad request"}', keep_alive=False))
            self._close()

    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        method = self._parser.get_method()
        keep_alive = self._parser.should_keep_alive()
        path = self._url.split(b"?", 1)[0]
        body = b"".join(self._body)
        if method == b"POST" and path == b"/v1/chat/completions":
            self._chat(body, keep_alive)
        elif method == b"GET" and path == b"/v1/models":
            self._reply(_json("200 OK", MODELS_BODY, keep_alive), keep_alive)
        elif method == b"POST" and path == b"/_mock/delay":
            self._state.delay_s = float(orjson.loads(body)["ms"]) / 1000
            self._reply(_json("200 OK", b'{"ok":true}', keep_alive), keep_alive)
        elif method == b"POST" and path == b"/_mock/pieces":
            self._state.set_pieces(int(orjson.loads(body)["n"]))
            self._reply(_json("200 OK", b'{"ok":true}', keep_alive), keep_alive)
        elif method == b"GET" and path == b"/_mock/stats":
            stats = orjson.dumps({"requests": self._state.chat_requests})
            self._reply(_json("200 OK", stats, keep_alive), keep_alive)
        else:
            self._reply(_json("404 Not Found", b'{"error":"not found"}', keep_alive), keep_alive)

    def _chat(self, body: bytes, keep_alive: bool) -> None:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            self._reply(_json("400 Bad Request", b'{"error":"invalid json"}', keep_alive), keep_alive)
            return
        self._state.chat_requests += 1
        if request.get("stream") is True:
            options = request.get("stream_options") or {}
            events = self._state.streams[bool(options.get("include_usage"))]
            head = _head("200 OK", b"text/event-stream", None, keep_alive)
            self._reply(head, keep_alive, events)
        else:
            self._reply(_json("200 OK", CHAT_BODY, keep_alive), keep_alive)

    def _reply(self, first: bytes, keep_alive: bool, rest: list[bytes] | None = None) -> None:
        delay = self._state.delay_s
        if delay <= 0 and self._pending is None:
            self._send(first, rest or [], keep_alive)
            return
        previous = self._pending
        self._pending = asyncio.get_running_loop().create_task(
            self._later(previous, delay, lambda: self._send(first, rest or [], keep_alive))
        )

    async def _later(
        self,
        previous: asyncio.Task[None] | None,
        delay: float,
        send: Callable[[], None],
    ) -> None:
        if previous is not None:
            await previous
        if delay > 0:
            await asyncio.sleep(delay)
        send()
        if self._pending is asyncio.current_task():
            self._pending = None

    def _send(self, first: bytes, rest: list[bytes], keep_alive: bool) -> None:
        if not rest:
            self._write(first)
        else:
            # The head and the first event go out together, like a real server
            # flushing its first token; the others follow as separate writes.
            self._write(first + rest[0])
            for event in rest[1:]:
                self._write(event)
        if not keep_alive:
            self._close()

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def serve(host: str, port: int, delay_ms: float) -> None:
    """Serve until cancelled."""
    state = MockState(delay_ms)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: MockProtocol(state), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18000)
    parser.add_argument(
        "--delay-ms", type=float, default=0.0, help="delay before the response or first chunk"
    )
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.delay_ms))


if __name__ == "__main__":
    main()
