"""Streamed chat always asks its upstream for usage; the client sees the usage chunk only if
it asked too, the hooks always see the usage, and an upstream that sends none has it
counted offline and marked estimated (services/usage.py `UsageStream`)."""

from __future__ import annotations

from typing import Any

from llm_gateway.core.context import Call, Operation
from llm_gateway.core.types import JSON, make_usage
from llm_gateway.services.tokens import count_prompt_tokens, count_text_tokens
from llm_gateway.services.usage import asks_for_usage, with_stream_usage
from tests.stubs import CHAT_USAGE, RecordingHook, StubProvider, chunk, context, pipeline

MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]


def call(**body: Any) -> Call:
    return Call(
        Operation.CHAT, {"model": "m", "messages": MESSAGES, "stream": True, **body}, model="m", stream=True
    )


async def read(
    stub: StubProvider, call: Call, hooks: list[RecordingHook] | None = None
) -> tuple[Any, list[Any]]:
    ctx = context()
    stream = await pipeline(
        stub, models={"m": {"deployments": [{"provider": stub.name, "model": "gpt-4o"}]}}, hooks=hooks or []
    ).stream(ctx, call)
    try:
        chunks = [item async for item in stream]
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return ctx, chunks


def ends(hook: RecordingHook) -> list[Any]:
    return [seen.usage for seen in hook.seen if seen.what == "on_end"]


async def test_a_client_that_did_not_ask_gets_no_usage_chunk_but_the_hooks_do() -> None:
    stub, hook = StubProvider("stub"), RecordingHook()
    ctx, chunks = await read(stub, call(), [hook])
    assert stub.requests[0].body["stream_options"] == {"include_usage": True}
    assert all(c["choices"] for c in chunks)
    assert not any(c.get("usage") for c in chunks)
    assert (ctx.usage, ctx.usage_estimated) == (CHAT_USAGE, False)
    assert ends(hook) == [CHAT_USAGE]


async def test_a_client_that_asked_gets_the_usage_chunk() -> None:
    stub, hook = StubProvider("stub"), RecordingHook()
    ctx, chunks = await read(stub, call(stream_options={"include_usage": True}), [hook])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == CHAT_USAGE
    assert ends(hook) == [CHAT_USAGE]
    assert ctx.usage_estimated is False


async def test_without_hooks_the_stream_is_not_metered() -> None:
    """Nothing reads usage with an empty chain: the request goes upstream as the client sent
    it (no `stream_options` added) and the chunks pass through unwrapped."""
    stub = StubProvider("stub")
    ctx, _ = await read(stub, call())
    assert ctx.usage is None
    assert "stream_options" not in stub.requests[-1].body


async def test_an_upstream_that_sends_no_usage_has_it_counted_and_marked() -> None:
    parts = [
        chunk("gpt-4o", {"role": "assistant", "content": "It is "}),
        chunk("gpt-4o", {"content": "sunny."}, finish="stop"),
    ]
    stub, hook = StubProvider("stub", chunks=parts), RecordingHook()
    ctx, chunks = await read(stub, call(), [hook])
    assert len(chunks) == 2
    prompt = count_prompt_tokens(Operation.CHAT, call().body, "gpt-4o")
    expected = make_usage(prompt, count_text_tokens("It is sunny.", "gpt-4o"))
    assert (ctx.usage, ctx.usage_estimated) == (expected, True)
    assert ends(hook) == [expected]


async def test_tool_call_arguments_count_as_output_when_estimated() -> None:
    head = {"index": 0, "id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    parts = [
        chunk("gpt-4o", {"role": "assistant", "tool_calls": [head]}),
        chunk("gpt-4o", {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]}),
        chunk("gpt-4o", {}, finish="tool_calls"),
    ]
    ctx, _ = await read(StubProvider("stub", chunks=parts), call(), [RecordingHook()])
    assert ctx.usage is not None and ctx.usage_estimated
    assert ctx.usage["completion_tokens"] == count_text_tokens('get_weather{"city": "Paris"}', "gpt-4o")


async def test_a_stream_closed_unread_is_estimated_and_closes_the_upstream() -> None:
    stub, hook = StubProvider("stub", chunks=[chunk("gpt-4o", {"content": "hi"})] * 3), RecordingHook()
    ctx = context()
    models = {"m": {"deployments": [{"provider": "stub", "model": "gpt-4o"}]}}
    stream = await pipeline(stub, models=models, hooks=[hook]).stream(ctx, call())
    await stream.aclose()  # type: ignore[attr-defined]
    assert stub.closed == 1
    assert ctx.usage_estimated is True
    assert ends(hook) == [ctx.usage]


def test_the_clients_other_stream_options_are_kept() -> None:
    body: JSON = {"stream_options": {"include_obfuscation": False}}
    sent = with_stream_usage(body)  # type: ignore[arg-type]
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert body == {"stream_options": {"include_obfuscation": False}}  # the client's body is not changed
    asked: JSON = {"stream_options": {"include_usage": True}}
    assert with_stream_usage(asked) is asked  # type: ignore[arg-type, comparison-overlap]
    assert asks_for_usage(asked) and not asks_for_usage(body) and not asks_for_usage({"stream_options": "x"})
