"""A raw-socket upstream: an asyncio server that writes exact bytes, so it can break HTTP in
ways no real server library would (bad status lines, lying lengths, NULs in headers), send
answers without end, bombs and redirects, and echo planted credentials into error bodies.

The scenario is named anywhere in the request, path or body, as `scn-<name>` (so it works for
every provider type: OpenAI and Anthropic put the model in the body, Azure, Gemini and Bedrock
in the path). Scenarios, by name:

    ok                        a valid chat completion (or an SSE stream when the body asks for one),
                              or an embeddings list on an /embeddings path
    <breakage>                one of BREAKAGE: HTTP-level or SSE-level breakage, or valid JSON of the
                              wrong shape
    mix                       each request the next of BREAKAGE (a deployment that is broken in
                              every way in turn)
    endless                   200, no length, body bytes until the client goes away
    bomb                      200, `content-encoding: gzip`, 256 MiB of zeros in about 255 KiB
    big                       200, `content-length` of 100 MB, all of it sent
    big-unsized               100 MB, no length (read until close)
    error-huge                500 with a 50 MB body
    redirect-<status>         that status with `location:` pointing at `redirect_to`
    echo-<n>                  an error echoing SECRETS in every field, and as text with the key
                              starting <n> characters in (around the 500-character cut);
                              echo-m1 is JSON, echo-m2 JSON with every secret spelled with a
                              `\\u` escape
    echo-stream[-anthropic]   a 200 stream whose second event is an error echoing SECRETS
"""

from __future__ import annotations

import asyncio
import gzip
import re
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cache

import orjson

PLANTED_KEY = "sk-planted-4f1c9a7e2b6d8035c1e9a4f7"
PLANTED_HEADER = "hdr-cred-7a91e3b5c2d4f6081e3a5c7b"
SECRETS = (PLANTED_KEY, PLANTED_HEADER)
MB = 1_000_000
CHUNK = 64 * 1024

_SCENARIO = re.compile(rb"scn-([a-z0-9-]+)")


def response(status: str, headers: dict[str, str], body: bytes = b"", *, keep_alive: bool = False) -> bytes:
    """The server closes every connection but a healthy answer's, and says so, so the client
    never reuses one it is about to close."""
    if not keep_alive:
        headers = {"connection": "close", **headers}
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


def json_response(
    payload: object, status: str = "200 OK", *, keep_alive: bool = False, **headers: str
) -> bytes:
    body = orjson.dumps(payload)
    fields = {"content-type": "application/json", "content-length": str(len(body)), **headers}
    return response(status, fields, body, keep_alive=keep_alive)


def completion(text: str = "fine") -> dict[str, object]:
    return {
        "id": "chatcmpl-raw",
        "object": "chat.completion",
        "created": 1,
        "model": "raw",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "raw",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


SSE_HEAD = response("200 OK", {"content-type": "text/event-stream", "connection": "close"})
FIRST = chunk({"role": "assistant", "content": "fine"})

BREAKAGE: dict[str, bytes] = {
    "bad-status-line": b"HTTQ/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
    "bad-status-code": b"HTTP/1.1 2x0 OK\r\ncontent-length: 2\r\n\r\n{}",
    "bad-content-length": b"HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\n{}",
    "duplicate-content-length": b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 5\r\n\r\n{}",
    "bad-chunk-size": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "nul-in-header": b"HTTP/1.1 200 OK\r\nx-bad: a\x00b\r\ncontent-length: 2\r\n\r\n{}",
    "huge-header": b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * 40_000 + b"\r\ncontent-length: 2\r\n\r\n{}",
    "many-headers": b"HTTP/1.1 200 OK\r\n"
    + b"".join(b"x-h%d: v\r\n" % i for i in range(500))
    + b"content-length: 2\r\n\r\n{}",
    "cut-body": b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"choices"',
    "not-json": response("200 OK", {"content-type": "application/json", "content-length": "5"}, b"<html"),
    "json-list": json_response([1, 2, 3]),
    "json-null": json_response(None),
    "choices-null": json_response({"choices": [None]}),
    "choices-no-message": json_response({"choices": [{"index": 0}]}),
    "usage-not-number": json_response({**completion(), "usage": {"prompt_tokens": "abc"}}),
    "sse-huge-event": SSE_HEAD + b"data: " + b"x" * (2 * 1024 * 1024) + b"\n\n",
    "sse-bad-event-name": SSE_HEAD + b"event: \xff\xfe\ndata: {}\n\n",
    "sse-wrong-shape": SSE_HEAD + b"data: [1,2,3]\n\n",
    "sse-midstream-wrong-shape": SSE_HEAD + FIRST + b'data: {"choices": [null]}\n\n',
    "sse-midstream-bad-usage": SSE_HEAD
    + FIRST
    + b'data: {"choices": [], "usage": {"total_tokens": "x"}}\n\n',
    "sse-midstream-cut": SSE_HEAD + FIRST + b'data: {"cho',
}
"""Answers that break HTTP, SSE or the answer's shape: each must be a retryable 502."""
EMBEDDING_BREAKAGE: dict[str, bytes] = {
    "emb-data-null": json_response({"object": "list", "data": None}),
    "emb-data-strings": json_response({"object": "list", "data": ["x"]}),
    "emb-vector-strings": json_response({"object": "list", "data": [{"embedding": ["a", "b"]}]}),
    "emb-usage-not-number": json_response(
        {"object": "list", "data": [{"embedding": [0.1]}], "usage": {"prompt_tokens": "abc"}}
    ),
}


@cache
def gzip_bomb() -> bytes:
    """256 MiB of zeros, gzipped: about 255 KiB on the wire."""
    return gzip.compress(bytes(256 * 1024 * 1024), compresslevel=9)


def echo_fields() -> dict[str, object]:
    """Every field an error mapper of any provider type might read, each carrying the secrets."""
    both = " ".join(SECRETS)
    error = {
        "message": f"bad key {both}",
        "code": PLANTED_KEY,
        "param": PLANTED_HEADER,
        "type": PLANTED_KEY,
        "status": PLANTED_HEADER,
        "details": [{"@type": "google.rpc.ErrorInfo", "reason": PLANTED_KEY}],
        "extra": both,
    }
    return {"type": "error", "error": error, "message": both, "Message": both, "__type": PLANTED_KEY}


def echo(offset: int, status: str) -> bytes:
    """An echo error: JSON for even offsets, text with the key `offset` characters in for odd."""
    headers = {"x-amzn-errortype": f"{PLANTED_KEY}:x", "x-echo": PLANTED_HEADER}
    if offset == -2:  # every secret spelled with a JSON escape: only a decoded field shows it
        body = orjson.dumps(echo_fields())
        for secret in SECRETS:
            body = body.replace(secret.encode(), b"\\u%04x" % ord(secret[0]) + secret[1:].encode())
        fields = {"content-type": "application/json", "content-length": str(len(body)), **headers}
        return response(status, fields, body)
    if offset < 0:
        return json_response(echo_fields(), status, **headers)
    text = ("e" * offset + PLANTED_KEY + " " + PLANTED_HEADER + " " + "z" * 600).encode()
    return response(status, {"content-type": "text/plain", "content-length": str(len(text)), **headers}, text)


def echo_stream(anthropic: bool) -> bytes:
    error = orjson.dumps(echo_fields())
    if anthropic:
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_raw",
                "type": "message",
                "role": "assistant",
                "model": "raw",
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 1, "output_tokens": 0},
            },
        }
        return (
            SSE_HEAD
            + b"event: message_start\ndata: "
            + orjson.dumps(start)
            + b"\n\nevent: error\ndata: "
            + error
            + b"\n\n"
        )
    return SSE_HEAD + FIRST + b"data: " + error + b"\n\n"


@dataclass
class RawUpstream:
    """What the raw server was asked, in order, and where its redirects point."""

    scenarios: list[str] = field(default_factory=list)
    redirect_to: str = "http://127.0.0.1:9/"
    _mix: int = 0

    def reset(self) -> None:
        self.scenarios.clear()
        self._mix = 0

    async def answer(self, name: str, request: bytes, writer: asyncio.StreamWriter) -> None:
        self.scenarios.append(name)
        if name == "mix":
            kinds = list(BREAKAGE)
            name = kinds[self._mix % len(kinds)]
            self._mix += 1
        if name in BREAKAGE:
            writer.write(BREAKAGE[name])
        elif name in EMBEDDING_BREAKAGE:
            writer.write(EMBEDDING_BREAKAGE[name])
        elif name == "ok":
            writer.write(self._ok(request))
        elif name.startswith("redirect-"):
            status = name.removeprefix("redirect-")
            location = self.redirect_to + "?key=" + PLANTED_KEY
            writer.write(response(f"{status} Moved", {"location": location, "content-length": "0"}))
        elif name.startswith("echo-stream"):
            writer.write(echo_stream(name.endswith("anthropic")))
        elif name.startswith("echo-"):
            writer.write(echo(int(name.removeprefix("echo-").replace("m", "-")), "400 Bad Request"))
        elif name == "bomb":
            bomb = gzip_bomb()
            headers = {"content-type": "application/json", "content-encoding": "gzip"}
            writer.write(response("200 OK", {**headers, "content-length": str(len(bomb))}, bomb))
        else:
            await self._flood(name, writer)
        await writer.drain()

    def _ok(self, request: bytes) -> bytes:
        head = request.split(b"\r\n", 1)[0]
        if b"/embeddings" in head:
            vectors = [{"object": "embedding", "index": 0, "embedding": [0.5]}]
            return json_response({"object": "list", "data": vectors}, keep_alive=True)
        if b'"stream":true' in request:
            return SSE_HEAD + FIRST + chunk({}, "stop") + b"data: [DONE]\n\n"
        return json_response(completion(), keep_alive=True)

    async def _flood(self, name: str, writer: asyncio.StreamWriter) -> None:
        block = b"x" * CHUNK
        if name == "endless":
            writer.write(response("200 OK", {"content-type": "application/json", "connection": "close"}))
            total = None
        elif name == "big":
            writer.write(
                response("200 OK", {"content-type": "application/json", "content-length": str(100 * MB)})
            )
            total = 100 * MB
        elif name == "big-unsized":
            writer.write(response("200 OK", {"content-type": "application/json", "connection": "close"}))
            total = 100 * MB
        elif name == "error-huge":
            headers = {"content-type": "text/plain", "content-length": str(50 * MB)}
            writer.write(response("500 Internal Server Error", headers))
            total = 50 * MB
        else:
            writer.write(json_response({"error": {"message": f"no scenario {name}"}}, "404 Not Found"))
            return
        sent = 0
        while total is None or sent < total:
            writer.write(block if total is None else block[: total - sent])
            sent += CHUNK
            await writer.drain()


class RawServer:
    """Serve a `RawUpstream` on 127.0.0.1 in its own thread and loop, until `stop()`."""

    def __init__(self, upstream: RawUpstream) -> None:
        self.upstream = upstream
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RawServer:
        self._thread.start()
        future: Future[int] = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.port = future.result(timeout=10)
        return self

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                found = _SCENARIO.search(request)
                name = found.group(1).decode() if found else "unknown"
                await self.upstream.answer(name, request, writer)
                if name != "ok":  # only the healthy answers are well-framed enough to reuse
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + (await reader.readexactly(length) if length else b"")
