"""OpenAI-format error responses mapped into the gateway's error tree, and the provider's wire I/O.

The I/O tests run the provider against a tiny aiohttp upstream on loopback that answers
in OpenAI's wire format (error bodies as https://platform.openai.com/docs/guides/error-codes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict
from pydantic import SecretStr

from llm_gateway.core.errors import (
    ContentPolicyViolation,
    ContextLengthExceeded,
    UpstreamConnectionError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamStatusError,
    UpstreamUnavailable,
)
from llm_gateway.core.types import ChatRequest
from llm_gateway.providers.openai import OpenAIProvider, OpenAISettings, openai_error
from llm_gateway.providers.transport import HttpClient
from tests.gateway import UPSTREAM_CLIENT

KEY = "sk-proj-abcdefghijklmnop0123456789"


def body(message: Any, code: Any = None, param: Any = None, type_: str = "invalid_request_error") -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def mapped(status: int, raw: bytes, headers: dict[str, str] | None = None) -> Any:
    return openai_error(status, raw, CIMultiDict(headers or {}), provider="oa", secrets=(KEY, None))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_keep_status_message_code_and_param(status: int) -> None:
    error = mapped(status, body("You did something", code="some_code", param="messages"))
    assert type(error) is UpstreamStatusError
    assert error.status_code == status
    assert error.to_body()["error"]["message"] == "You did something"
    assert (error.code, error.param, error.provider) == ("some_code", "messages", "oa")


def test_rate_limit_keeps_retry_after() -> None:
    error = mapped(429, body("Rate limit reached", code="rate_limit_exceeded"), {"Retry-After": "12"})
    assert isinstance(error, UpstreamRateLimited)
    assert error.status_code == 429 and error.retryable
    assert error.retry_after == 12 and error.headers["retry-after"] == "12"
    assert error.code == "rate_limit_exceeded"


def test_retry_after_ms_is_read_too() -> None:
    assert mapped(429, body("slow"), {"retry-after-ms": "1500"}).retry_after == 1.5


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_502(status: int) -> None:
    error = mapped(status, body("The server had an error", type_="server_error"))
    assert type(error) is UpstreamUnavailable
    assert error.status_code == 502 and error.retryable
    assert "The server had an error" in error.message and f"HTTP {status}" in error.message


def test_529_is_overloaded() -> None:
    assert isinstance(mapped(529, body("overloaded")), UpstreamOverloaded)


@pytest.mark.parametrize(
    "raw",
    [
        body("This model's maximum context length is 8192 tokens.", code="context_length_exceeded"),
        body("too long", code="string_above_max_length", param="messages[0].content"),
        body("This model's maximum context length is 4097 tokens, however you requested 5000"),
    ],
)
def test_context_length(raw: bytes) -> None:
    error = mapped(400, raw)
    assert isinstance(error, ContextLengthExceeded)
    assert error.status_code == 400 and not error.retryable
    assert error.code == "context_length_exceeded"


def test_context_length_wording_on_another_status_is_not_context_length() -> None:
    assert not isinstance(mapped(500, body("maximum context length")), ContextLengthExceeded)


@pytest.mark.parametrize("code", ["content_policy_violation", "content_filter"])
def test_content_policy(code: str) -> None:
    error = mapped(400, body("Your request was rejected by the safety system", code=code, param="prompt"))
    assert isinstance(error, ContentPolicyViolation)
    assert error.status_code == 400
    assert error.code == "content_policy_violation" and error.param == "prompt"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
        (b"", "HTTP 418"),
        (b"[1, 2]", "[1, 2]"),
        (b'"just a string"', '"just a string"'),
        (orjson.dumps({"error": "quota gone"}), "quota gone"),
        (orjson.dumps({"error": {"code": 5}}), "HTTP 418"),
        (orjson.dumps({"detail": "not openai"}), '{"detail":"not openai"}'),
    ],
)
def test_bodies_that_are_not_openai_errors(raw: bytes, message: str) -> None:
    error = mapped(418, raw)
    assert type(error) is UpstreamStatusError and error.status_code == 418
    assert error.message == message
    assert error.code is None and error.param is None


def test_a_huge_non_json_body_is_truncated() -> None:
    assert len(mapped(400, b"x" * 100_000).message) == 500


@pytest.mark.parametrize(
    "raw",
    [
        body(f"Incorrect API key provided: {KEY}. You can find your API key at ...", code="invalid_api_key"),
        f"<html>bad key {KEY}</html>".encode(),
        orjson.dumps({"error": f"key {KEY} revoked"}),
    ],
)
@pytest.mark.parametrize("status", [401, 500])
def test_our_key_is_redacted_from_any_message(raw: bytes, status: int) -> None:
    error = mapped(status, raw)
    rendered = orjson.dumps(error.to_body()).decode()
    assert KEY not in rendered and KEY not in str(error)
    assert "[redacted]" in rendered


class Upstream:
    """A one-route OpenAI-ish upstream whose answer each test sets."""

    def __init__(self) -> None:
        self.received: list[tuple[str, CIMultiDict[str], dict[str, Any]]] = []
        self.answer: Any = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append((request.path, CIMultiDict(request.headers), orjson.loads(await request.read())))
        answer = self.answer
        if isinstance(answer, web.Response):
            return answer
        if isinstance(answer, SlowStream):
            return await answer.handle(request)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for piece in answer:
            await response.write(piece)
        await response.write_eof()
        return response

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        app.router.add_post("/v1/embeddings", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{cast(Any, site._server).sockets[0].getsockname()[1]}/v1/"


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = Upstream()
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


@pytest.fixture
async def provider(upstream: Upstream) -> AsyncIterator[OpenAIProvider]:
    settings = OpenAISettings(
        type="openai",
        base_url=upstream.url,
        api_key=SecretStr(KEY),
        organization="org-9",
        headers={"x-extra": "1"},
    )
    provider = OpenAIProvider("oa", settings, HttpClient("oa", settings, client=UPSTREAM_CLIENT))
    yield provider
    await provider.aclose()


REQUEST: ChatRequest = cast(
    ChatRequest, {"model": "public", "messages": [{"role": "user", "content": "hi"}], "x_future": [1]}
)


def json_answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(payload), content_type="application/json", headers=headers
    )


async def test_complete_sends_the_request_with_the_upstream_model_and_our_headers(
    upstream: Upstream, provider: OpenAIProvider
) -> None:
    upstream.answer = json_answer({"id": "c", "object": "chat.completion", "choices": [], "model": "up-1"})
    completion = await provider.complete(REQUEST, "up-1")
    assert completion["model"] == "up-1"
    path, headers, sent = upstream.received[-1]
    assert path == "/v1/chat/completions"  # the trailing slash of base_url is not doubled
    assert sent == {**REQUEST, "model": "up-1"}
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["OpenAI-Organization"] == "org-9"
    assert headers["x-extra"] == "1"
    assert REQUEST["model"] == "public", "the caller's request must not be mutated"


async def test_complete_maps_an_error_and_redacts_the_key(
    upstream: Upstream, provider: OpenAIProvider
) -> None:
    upstream.answer = json_answer(
        {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}, status=401
    )
    with pytest.raises(UpstreamStatusError) as caught:
        await provider.complete(REQUEST, "up-1")
    assert caught.value.status_code == 401 and KEY not in caught.value.message


async def test_complete_with_a_garbage_200_is_a_502(upstream: Upstream, provider: OpenAIProvider) -> None:
    upstream.answer = web.Response(body=b"<html>oops</html>", content_type="text/html")
    with pytest.raises(UpstreamUnavailable):
        await provider.complete(REQUEST, "up-1")


def sse(*payloads: Any) -> list[bytes]:
    return [b"data: " + (p if isinstance(p, bytes) else orjson.dumps(p)) + b"\n\n" for p in payloads]


async def test_stream_yields_chunks_until_done(upstream: Upstream, provider: OpenAIProvider) -> None:
    chunks: list[Any] = [{"id": "c", "choices": [{"index": 0, "delta": {"content": w}}]} for w in ("a", "b")]
    upstream.answer = [b": keep-alive\n\n", *sse(*chunks, b"[DONE]")]
    received = [chunk async for chunk in provider.stream(REQUEST, "up-1")]
    assert received == chunks
    assert upstream.received[-1][2]["stream"] is True and upstream.received[-1][2]["model"] == "up-1"


async def test_a_stream_that_ends_without_done_is_a_connection_error(
    upstream: Upstream, provider: OpenAIProvider
) -> None:
    upstream.answer = sse({"id": "c", "choices": []})
    with pytest.raises(UpstreamConnectionError, match="ended the stream early"):
        async for _ in provider.stream(REQUEST, "up-1"):
            pass


async def test_an_error_event_mid_stream_is_raised_redacted(
    upstream: Upstream, provider: OpenAIProvider
) -> None:
    upstream.answer = sse({"id": "c", "choices": []}, {"error": {"message": f"boom {KEY}"}})
    received = []
    with pytest.raises(UpstreamUnavailable) as caught:
        async for chunk in provider.stream(REQUEST, "up-1"):
            received.append(chunk)
    assert len(received) == 1
    assert "boom" in caught.value.message and KEY not in caught.value.message


async def test_an_error_status_before_the_stream(upstream: Upstream, provider: OpenAIProvider) -> None:
    upstream.answer = json_answer(
        {"error": {"message": "slow down"}}, status=429, headers={"retry-after": "3"}
    )
    with pytest.raises(UpstreamRateLimited) as caught:
        await anext(provider.stream(REQUEST, "up-1"))
    assert caught.value.retry_after == 3


async def test_embed_goes_to_the_embeddings_url(upstream: Upstream, provider: OpenAIProvider) -> None:
    upstream.answer = json_answer({"object": "list", "data": [], "model": "e-up"})
    result = await provider.embed({"input": "x", "model": "public"}, "e-up")
    assert result["model"] == "e-up"
    path, _, sent = upstream.received[-1]
    assert path == "/v1/embeddings" and sent == {"input": "x", "model": "e-up"}


async def test_no_key_no_authorization_header(upstream: Upstream) -> None:
    settings = OpenAISettings(type="openai", base_url=upstream.url.rstrip("/"))
    provider = OpenAIProvider("local", settings, HttpClient("local", settings, client=UPSTREAM_CLIENT))
    upstream.answer = json_answer({"id": "c", "choices": []})
    try:
        await provider.complete(REQUEST, "llama")
    finally:
        await provider.aclose()
    assert "Authorization" not in upstream.received[-1][1]


class SlowStream:
    """An upstream that streams `total` events `interval` seconds apart and records whether
    the client closed the connection before it had sent them all."""

    def __init__(self, total: int = 50, interval: float = 0.02) -> None:
        self.total, self.interval = total, interval
        self.sent = 0
        self.disconnected = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(self.total):
            if request.transport is None or request.transport.is_closing():
                self.disconnected.set()
                return response
            try:
                await response.write(sse({"id": "c", "choices": []})[0])
            except ConnectionResetError:
                self.disconnected.set()
                return response
            self.sent += 1
            await asyncio.sleep(self.interval)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


async def test_cancelling_a_stream_closes_the_upstream_connection(
    upstream: Upstream, provider: OpenAIProvider
) -> None:
    slow = SlowStream()
    upstream.answer = slow
    stream = provider.stream(REQUEST, "up-1")
    await anext(stream)
    await asyncio.wait_for(stream.aclose(), 5)  # type: ignore[attr-defined]
    # The whole answer takes a second; the closed connection must be seen long before.
    try:
        await asyncio.wait_for(slow.disconnected.wait(), 0.5)
    except TimeoutError:
        pytest.fail(f"the upstream connection stayed open after aclose() ({slow.sent} events sent)")
    assert slow.sent < 10, f"the upstream kept sending after the stream was closed: {slow.sent} events"
