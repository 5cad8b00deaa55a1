"""The shared transport: SSE framing, transport-error mapping, retry-after, status mapping, redaction.

The HTTP parts run against a tiny aiohttp server on loopback in the test's own loop, so
framing and timeouts are the real thing, not a model of it.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict

from llm_gateway.core.config import ProviderSettings
from llm_gateway.core.errors import (
    ProviderError,
    UpstreamConnectionError,
    UpstreamMalformed,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamResponseTooLarge,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from llm_gateway.providers.transport import (
    HttpClient,
    error_for_status,
    parse_json_body,
    redact,
    retry_after_seconds,
    sse_events,
)
from llm_gateway.providers.upstream import read_body
from tests.gateway import UPSTREAM_CLIENT, free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Upstream:
    """A loopback aiohttp server whose routes the test defines; remembers each request's peer port."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.peers: list[int] = []
        self.release = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    def route(self, path: str, handler: Handler) -> None:
        async def recorded(request: web.Request) -> web.StreamResponse:
            assert request.transport is not None
            self.peers.append(request.transport.get_extra_info("peername")[1])
            return await handler(request)

        self.app.router.add_route("*", path, recorded)

    async def start(self) -> None:
        self.runner = web.AppRunner(
            self.app, handler_cancellation=True, shutdown_timeout=0.1, access_log=None
        )
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = cast(Any, site._server)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = Upstream()
    yield server
    server.release.set()
    if server.runner is not None:
        await server.runner.cleanup()


def client(**settings: Any) -> HttpClient:
    return HttpClient("up", ProviderSettings(type="test", **settings), client=UPSTREAM_CLIENT)


def sse_route(upstream: Upstream, pieces: list[bytes]) -> None:
    """Serve `pieces` as separate writes, so frames straddle TCP segments as they do in the wild."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(0.001)
        await response.write_eof()
        return response

    upstream.route("/sse", handler)


async def events_of(upstream: Upstream, pieces: list[bytes]) -> list[tuple[str | None, bytes]]:
    sse_route(upstream, pieces)
    await upstream.start()
    http = client()
    try:
        async with http.request("GET", f"{upstream.url}/sse", headers={}, stream=True) as response:
            return [event async for event in sse_events(response)]
    finally:
        await http.aclose()


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([b"data: a\n\ndata: b\n\n"], [(None, b"a"), (None, b"b")]),
        ([b"data: a\r\n\r\ndata: b\r\n\r\n"], [(None, b"a"), (None, b"b")]),
        ([b"data: line1\ndata: line2\n\n"], [(None, b"line1\nline2")]),
        ([b"data: one\r\ndata: two\r\n\r\n"], [(None, b"one\ntwo")]),
        (
            [b"event: message_start\ndata: {}\n\ndata: after\n\n"],
            [("message_start", b"{}"), (None, b"after")],
        ),
        ([b": keep-alive\n\n: ping\ndata: x\n\n"], [(None, b"x")]),
        ([b"event: ping\n\ndata: y\n\n"], [(None, b"y")]),
        ([b"id: 7\nretry: 100\ndata: z\n\n"], [(None, b"z")]),
        ([b"data:tight\n\ndata:  spaced\n\n"], [(None, b"tight"), (None, b" spaced")]),
        ([b"data: a\n\ndata: last"], [(None, b"a"), (None, b"last")]),
        ([b"data: a\n\ndata: last\n"], [(None, b"a"), (None, b"last")]),
        (
            [b"d", b"ata: hel", b"lo\n", b"\n", b"event: e\r", b"\ndata: [DONE]\n\n"],
            [(None, b"hello"), ("e", b"[DONE]")],
        ),
        ([b"\n\n\n"], []),
        ([], []),
    ],
    ids=[
        "lf",
        "crlf",
        "multi-line",
        "multi-line-crlf",
        "event-name",
        "comments",
        "event-without-data",
        "id-and-retry-ignored",
        "space-after-colon",
        "no-trailing-blank-line",
        "no-trailing-blank-line-2",
        "split-writes",
        "only-blank-lines",
        "empty-body",
    ],
)
async def test_sse_framing(
    upstream: Upstream, pieces: list[bytes], expected: list[tuple[str | None, bytes]]
) -> None:
    assert await events_of(upstream, pieces) == expected


async def test_sse_large_event(upstream: Upstream) -> None:
    big = b"x" * 300_000
    assert await events_of(upstream, [b"data: " + big + b"\n\n", b"data: end\n\n"]) == [
        (None, big),
        (None, b"end"),
    ]


class FakeResponse:
    """Just what `sse_events` reads: the body's reads, as they arrive."""

    status = 200
    headers: dict[str, str] = {}  # noqa: RUF012 (never written)
    content_length = None

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    async def chunks(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece


async def parsed(pieces: list[bytes], limit: int = 1024 * 1024) -> list[tuple[str | None, bytes]]:
    response = FakeResponse(pieces)
    return [event async for event in sse_events(response, provider="up", limit=limit)]


async def test_sse_over_reads_of_any_size() -> None:
    response = FakeResponse([b"event: a\r\n", b"data: 1\n", b"\r\n", b"data: 2"])
    assert [event async for event in sse_events(response)] == [("a", b"1"), (None, b"2")]


async def test_sse_framing_is_the_same_wherever_a_read_ends() -> None:
    body = b"event: e\r\ndata: one\ndata: two\n\n: c\ndata: [DONE]\n\n"
    expected = [("e", b"one\ntwo"), (None, b"[DONE]")]
    for cut in range(len(body) + 1):
        for second in range(cut, len(body) + 1):
            assert await parsed([body[:cut], body[cut:second], body[second:]]) == expected, (cut, second)


@pytest.mark.parametrize(
    "pieces",
    [
        [b"data: " + b"x" * 3000 + b"\n\n"],
        [b"data: " + b"x" * 600 + b"\n"] * 5 + [b"\n"],
        [b"data: " + b"x" * 100] * 40,
        [b": " + b"x" * 100] * 40,
    ],
    ids=["one-line", "many-lines", "unfinished-line", "endless-comment"],
)
async def test_an_event_over_the_limit_is_a_502(pieces: list[bytes]) -> None:
    with pytest.raises(UpstreamResponseTooLarge) as caught:
        await parsed(pieces, limit=2048)
    assert caught.value.status_code == 502 and "2048 bytes" in caught.value.message
    assert caught.value.code == "upstream_response_too_large"


async def test_events_under_the_limit_pass_however_long_the_stream() -> None:
    pieces = [b"data: " + b"x" * 1000 + b"\n\n"] * 100
    assert len(await parsed(pieces, limit=2048)) == 100


async def test_an_event_name_that_is_not_utf8_is_a_502() -> None:
    with pytest.raises(UpstreamMalformed):
        await parsed([b"event: \xff\xfe\ndata: {}\n\n"])


async def test_a_full_read_keeps_the_connection_alive(upstream: Upstream) -> None:
    upstream.route("/json", lambda request: _json())
    await upstream.start()
    http = client()
    try:
        for _ in range(2):
            async with http.request("POST", f"{upstream.url}/json", headers={}, body=b"{}") as response:
                assert response.status == 200
                assert orjson.loads(await read_body(response, 1024, "up")) == {"ok": True}
    finally:
        await http.aclose()
    assert len(upstream.peers) == 2 and upstream.peers[0] == upstream.peers[1]


async def _json() -> web.StreamResponse:
    return web.json_response({"ok": True})


async def test_an_abandoned_stream_closes_its_connection(upstream: Upstream) -> None:
    sse_route(upstream, [b"data: 1\n\n", *([b"data: more\n\n"] * 200)])
    upstream.route("/json", lambda request: _json())
    await upstream.start()
    http = client()
    try:
        async with http.request("GET", f"{upstream.url}/sse", headers={}, stream=True) as response:
            assert await anext(sse_events(response)) == (None, b"1")
        async with http.request("GET", f"{upstream.url}/json", headers={}) as response:
            await read_body(response, 1 << 20, "up")
    finally:
        await http.aclose()
    assert upstream.peers[0] != upstream.peers[1], "a half-read connection went back to the pool"


async def test_connection_refused_is_a_connection_error() -> None:
    http = client(connect_timeout=1)
    try:
        with pytest.raises(UpstreamConnectionError) as caught:
            async with http.request("POST", f"http://127.0.0.1:{free_port()}/x", headers={}):
                pass
    finally:
        await http.aclose()
    assert caught.value.provider == "up" and caught.value.status_code == 502
    assert caught.value.__cause__ is None


async def test_a_slow_answer_is_a_timeout(upstream: Upstream) -> None:
    async def hang(request: web.Request) -> web.StreamResponse:
        await upstream.release.wait()
        return web.Response()

    upstream.route("/hang", hang)
    await upstream.start()
    http = client(timeout=30)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        with pytest.raises(UpstreamTimeout) as caught:
            async with http.request("POST", f"{upstream.url}/hang", headers={}, timeout=0.2):
                pass
    finally:
        await http.aclose()
    assert 0.2 <= loop.time() - start < 2
    assert caught.value.status_code == 504 and caught.value.provider == "up"


async def test_silence_in_a_stream_is_a_timeout_but_a_long_stream_is_not(upstream: Upstream) -> None:
    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(6):  # 0.3 s in all, longer than the timeout, never silent for long
            await response.write(b"data: tick\n\n")
            await asyncio.sleep(0.05)
        await upstream.release.wait()
        return response

    upstream.route("/drip", drip)
    await upstream.start()
    http = client()
    received: list[bytes] = []
    try:
        with pytest.raises(UpstreamTimeout):
            async with http.request(
                "GET", f"{upstream.url}/drip", headers={}, timeout=0.2, stream=True
            ) as response:
                async for _event, data in sse_events(response):
                    received.append(data)
    finally:
        await http.aclose()
    assert received == [b"tick"] * 6


async def test_a_cut_body_is_a_connection_error(upstream: Upstream) -> None:
    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-length": "1000"})
        await response.prepare(request)
        await response.write(b"x" * 10)
        assert request.transport is not None
        request.transport.close()
        return response

    upstream.route("/cut", cut)
    await upstream.start()
    http = client()
    try:
        with pytest.raises(UpstreamConnectionError):
            async with http.request("GET", f"{upstream.url}/cut", headers={}) as response:
                await read_body(response, 1 << 20, "up")
    finally:
        await http.aclose()


async def test_the_session_reopens_after_aclose(upstream: Upstream) -> None:
    upstream.route("/json", lambda request: _json())
    await upstream.start()
    http = client()
    for _ in range(2):
        async with http.request("GET", f"{upstream.url}/json", headers={}) as response:
            assert response.status == 200
        await http.aclose()
    await http.aclose()  # twice is fine


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after-ms": "2500"}, 2.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),
        ({"retry-after": "tomorrow-ish"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "1e999"}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert retry_after_seconds(headers, now=now) == expected


def test_retry_after_header_names_are_case_insensitive_as_aiohttp_gives_them() -> None:
    assert retry_after_seconds(CIMultiDict({"Retry-After": "4"})) == 4.0
    assert retry_after_seconds(CIMultiDict({"Retry-After-Ms": "40"})) == 0.04


def test_retry_after_a_date_uses_the_clock_by_default() -> None:
    soon = email.utils.formatdate(usegmt=True, timeval=None)
    seconds = retry_after_seconds({"retry-after": soon})
    assert seconds is not None and 0 <= seconds <= 1


def test_garbage_retry_after_still_builds_an_error() -> None:
    error = error_for_status(
        429, "slow", provider="p", retry_after=retry_after_seconds({"retry-after": "inf"})
    )
    assert error.headers == {}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_upstream_4xx_keeps_status_message_code_and_param(status: int) -> None:
    error = error_for_status(status, "upstream words", provider="p", code="bad_thing", param="messages")
    assert type(error) is UpstreamStatusError
    assert error.status_code == status
    assert error.to_body()["error"]["message"] == "upstream words"
    assert (error.code, error.param, error.provider) == ("bad_thing", "messages", "p")


def test_upstream_429_is_rate_limited_with_retry_after() -> None:
    error = error_for_status(429, "slow down", provider="p", code="rate_limit_exceeded", retry_after=7)
    assert isinstance(error, UpstreamRateLimited)
    assert error.status_code == 429 and error.retryable
    assert error.headers["retry-after"] == "7"
    assert error.message == "slow down"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_upstream_5xx_is_a_502(status: int) -> None:
    error = error_for_status(status, "boom", provider="p", retry_after=2)
    assert type(error) is UpstreamUnavailable
    assert error.status_code == 502 and error.retryable
    assert error.message == f"upstream provider 'p' failed with HTTP {status}: boom"
    assert error.retry_after == 2


def test_upstream_529_is_overloaded() -> None:
    error = error_for_status(529, "busy", provider="p")
    assert isinstance(error, UpstreamOverloaded)
    assert error.status_code == 503 and error.retryable
    assert "busy" in error.message


def test_every_mapping_is_a_provider_error_naming_the_provider() -> None:
    for status in (400, 404, 429, 500, 529):
        error = error_for_status(status, "m", provider="acct")
        assert isinstance(error, ProviderError) and error.provider == "acct"


def test_redact() -> None:
    key = "sk-live-0123456789"
    text = f"Incorrect API key provided: {key}. You passed {key} again; org {key[:6]}"
    assert (
        redact(text, [key])
        == "Incorrect API key provided: [redacted]. You passed [redacted] again; org sk-liv"
    )
    assert redact("a=secret1 b=secret2", ["secret1", None, "secret2"]) == "a=[redacted] b=[redacted]"
    assert redact("nothing here", [key]) == "nothing here"
    # Empty or tiny "secrets" would shred the message for nothing.
    assert redact("a b c", ["", None, "a"]) == "a b c"


def test_parse_json_body() -> None:
    assert parse_json_body(b'{"a": [1, 2]}', "p") == {"a": [1, 2]}
    with pytest.raises(UpstreamUnavailable) as caught:
        parse_json_body(b"<html>oops</html>", "p")
    assert caught.value.status_code == 502 and caught.value.provider == "p"
    assert "oops" not in caught.value.message
