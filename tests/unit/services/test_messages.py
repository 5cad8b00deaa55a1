"""`/v1/messages` and `count_tokens` through the pipeline: native pass-through for providers
that speak the Messages API, translation for the rest, decided per deployment; over
in-process stub providers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llm_gateway.core.context import Call, Operation
from llm_gateway.core.errors import InvalidRequest, UpstreamConnectionError
from llm_gateway.core.types import JSON
from llm_gateway.providers.base import native_messages as native
from llm_gateway.services.messages import MessagesRequest
from llm_gateway.services.pipeline import Pipeline
from tests.stubs import NATIVE_EVENTS, NativeStub, Request, StubProvider, chunk, context, pipeline

BODY: JSON = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
TRANSLATED_EVENTS = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
]
UNTRANSLATABLE: JSON = {**BODY, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
"""A server tool only Anthropic runs: translating it to a chat request is a 400."""


def messages(model: str, body: JSON = BODY, *, stream: bool = False, beta: str | None = None) -> Call:
    body = {**body, "model": model, **({"stream": True} if stream else {})}
    options = {"beta": beta} if beta else {}
    return Call(Operation.MESSAGES, body, model=model, stream=stream, options=options)


def count_tokens(model: str, body: JSON) -> Call:
    return Call(Operation.COUNT_TOKENS, {**body, "model": model}, model=model)


def test_native_is_decided_by_the_capability() -> None:
    assert native(NativeStub()) is not None
    assert native(StubProvider()) is None


def test_the_chat_translation_is_made_once_and_only_when_asked_for() -> None:
    request = MessagesRequest(messages("gpt", beta="b1"))
    assert (request.model, request.beta) == ("gpt", "b1")
    assert request._chat is None
    assert request.chat is request.chat
    assert request.chat["messages"] == [{"role": "user", "content": "hi"}]


async def test_native_create_passes_the_body_and_beta_through() -> None:
    claude = NativeStub("claude")
    call = messages("claude", {**BODY, "anything": {"kept": True}}, beta="b1")
    ctx = context()
    value = await pipeline(claude).complete(ctx, call)
    assert value["content"] == [{"type": "text", "text": "native"}]
    assert claude.requests == [Request("messages", call.body, "up-claude", "b1")]
    assert ctx.route is not None and ctx.route.provider == "claude"


async def test_translated_create() -> None:
    gpt = StubProvider("gpt")
    value = await pipeline(gpt).complete(context(), messages("gpt"))
    assert value["type"] == "message"
    assert value["content"] == [{"type": "text", "text": "hello"}]
    assert (value["stop_reason"], value["usage"]["input_tokens"]) == ("end_turn", 3)
    [request] = gpt.requests
    assert (request.kind, request.model) == ("complete", "up-gpt")
    assert request.body["messages"] == [{"role": "user", "content": "hi"}]


async def test_translation_is_only_made_when_needed() -> None:
    claude, gpt = NativeStub("claude"), StubProvider("gpt")
    service = pipeline(claude, gpt)
    await service.complete(context(), messages("claude", UNTRANSLATABLE))
    assert [r.kind for r in claude.requests] == ["messages"]
    with pytest.raises(InvalidRequest):
        await service.complete(context(), messages("gpt", UNTRANSLATABLE))
    assert gpt.requests == []


async def test_a_mixed_group_translates_for_its_chat_deployments_only() -> None:
    claude, gpt = NativeStub("claude"), StubProvider("gpt")
    both = {"deployments": [{"provider": "claude"}, {"provider": "gpt"}]}
    service = pipeline(claude, gpt, models={"both": both})
    for _ in range(10):
        natively = len(claude.requests)
        value = await service.complete(context(), messages("both"))
        served_natively = len(claude.requests) > natively
        assert value["content"][0]["text"] == ("native" if served_natively else "hello")
    assert {r.kind for r in claude.requests} == {"messages"}
    assert {r.kind for r in gpt.requests} == {"complete"}
    assert claude.requests and gpt.requests  # the seeded pick used both


async def test_native_stream_is_relayed_with_the_beta() -> None:
    claude = NativeStub("claude")
    call = messages("claude", stream=True, beta="b2")
    stream = await pipeline(claude).stream(context(), call)
    assert [event async for event in stream] == NATIVE_EVENTS
    assert claude.requests == [Request("messages_stream", call.body, "up-claude", "b2")]
    assert (claude.finished, claude.closed) == (1, 1)


async def translated(stream: Any) -> list[tuple[str, Any]]:
    return [(name, orjson.loads(data)) async for name, data in stream]


async def test_translated_stream_and_its_closing() -> None:
    gpt = StubProvider("gpt")
    events = await translated(await pipeline(gpt).stream(context(), messages("gpt", stream=True)))
    assert [name for name, _ in events] == TRANSLATED_EVENTS
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["usage"]["output_tokens"] == 2
    assert gpt.requests[0].body["stream_options"] == {"include_usage": True}
    assert (gpt.finished, gpt.closed) == (1, 1)

    early = StubProvider("gpt")
    stream = await pipeline(early).stream(context(), messages("gpt", stream=True))
    assert (await anext(stream))[0] == "message_start"
    await stream.aclose()  # type: ignore[attr-defined]
    assert (early.opened, early.finished, early.closed) == (1, 0, 1)


async def test_a_translated_stream_failing_midway_raises_and_closes_the_upstream() -> None:
    cut = UpstreamConnectionError("cut", provider="gpt")
    gpt = StubProvider("gpt", chunks=[chunk("up-gpt", {"role": "assistant", "content": "hel"}), cut])
    stream = await pipeline(gpt).stream(context(), messages("gpt", stream=True))
    names = []
    with pytest.raises(UpstreamConnectionError):
        async for name, _ in stream:
            names.append(name)
    assert names == ["message_start", "content_block_start", "content_block_delta"]
    assert (gpt.finished, gpt.closed) == (0, 1)


async def test_count_tokens_native_or_estimated() -> None:
    claude, gpt = NativeStub("claude"), StubProvider("gpt")
    service = pipeline(claude, gpt)
    body: JSON = {"messages": [{"role": "user", "content": "x" * 40}]}

    native_ctx = context()
    assert await service.complete(native_ctx, count_tokens("claude", body)) == {"input_tokens": 42}
    assert [r.kind for r in claude.requests] == ["count_tokens"]
    assert native_ctx.route is not None and native_ctx.route.attempts == 1

    estimated_ctx = context()
    assert await service.complete(estimated_ctx, count_tokens("gpt", body)) == {"input_tokens": 13}
    assert estimated_ctx.route is None  # no upstream attempt: x-llm-gateway-attempts is 0
    assert gpt.requests == []


async def test_count_tokens_forwards_the_beta() -> None:
    claude = NativeStub("claude")
    call = Call(Operation.COUNT_TOKENS, BODY, model="claude", options={"beta": "b3"})
    await pipeline(claude).complete(context(), call)
    assert claude.requests == [Request("count_tokens", BODY, "up-claude", "b3")]


async def test_count_tokens_cannot_be_streamed() -> None:
    service: Pipeline = pipeline(NativeStub("claude"))
    call = Call(Operation.COUNT_TOKENS, BODY, model="claude", stream=True)
    with pytest.raises(InvalidRequest) as caught:
        await service.stream(context(), call)
    assert caught.value.param == "stream"


async def test_count_tokens_in_a_mixed_group_never_counts_an_estimate_as_an_attempt() -> None:
    claude, gpt = NativeStub("claude"), StubProvider("gpt")
    both = {"deployments": [{"provider": "claude"}, {"provider": "gpt"}]}
    service = pipeline(claude, gpt, models={"both": both})
    body: JSON = {"messages": [{"role": "user", "content": "x" * 40}]}
    for _ in range(10):
        ctx = context()
        value = await service.complete(ctx, count_tokens("both", body))
        if ctx.route is not None:  # an upstream attempt: the native count
            assert (value, ctx.route.provider) == ({"input_tokens": 42}, "claude")
