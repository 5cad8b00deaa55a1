"""What a call cost lands in `ctx.usage`, in the chat `Usage` shape, for every operation,
plain or streamed (services/usage.py), and reaches the hooks' `on_end`. Anthropic-shaped
usage counts every prompt token once in `prompt_tokens`, cache reads included."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.types import JSON, Usage
from llm_gateway.observability.spans import STREAMED, StreamedAnswer
from llm_gateway.services.usage import ChunkMeter, EventMeter, ResponseEventMeter, embedding_usage
from tests.stubs import (
    CHAT_USAGE,
    EmbeddingStub,
    NativeStub,
    RecordingHook,
    StubProvider,
    context,
    event,
    pipeline,
)

MESSAGES: JSON = {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
CHAT: JSON = {"messages": [{"role": "user", "content": "hi"}]}


def usage(prompt: int, completion: int, cached: int = 0) -> Usage:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "cache_creation_tokens": 0},
    }


NATIVE = usage(9, 2, cached=4)  # 5 fresh input tokens and 4 read from cache
TRANSLATED = usage(3, 2)  # the stub's chat usage, there and back


def call(operation: Operation, stream: bool) -> Call:
    body = {**(CHAT if operation is Operation.CHAT else MESSAGES), "model": "m"}
    if operation is Operation.EMBEDDINGS:
        body = {"model": "m", "input": "hi"}
    if stream:
        body["stream"] = True
        if operation is Operation.CHAT:
            body["stream_options"] = {"include_usage": True}
    return Call(operation, body, model="m", stream=stream)


CASES = [
    pytest.param(StubProvider, Operation.CHAT, False, CHAT_USAGE, id="chat"),
    pytest.param(StubProvider, Operation.CHAT, True, CHAT_USAGE, id="chat-streamed"),
    pytest.param(
        EmbeddingStub,
        Operation.EMBEDDINGS,
        False,
        {"prompt_tokens": 2, "completion_tokens": 0, "total_tokens": 2},
        id="embeddings",
    ),
    pytest.param(NativeStub, Operation.MESSAGES, False, NATIVE, id="messages-native"),
    pytest.param(NativeStub, Operation.MESSAGES, True, NATIVE, id="messages-native-streamed"),
    pytest.param(StubProvider, Operation.MESSAGES, False, TRANSLATED, id="messages-translated"),
    pytest.param(StubProvider, Operation.MESSAGES, True, TRANSLATED, id="messages-translated-streamed"),
    pytest.param(NativeStub, Operation.COUNT_TOKENS, False, None, id="count-tokens"),
]


@pytest.mark.parametrize(("kind", "operation", "stream", "expected"), CASES)
async def test_usage_lands_in_the_context(
    kind: type[StubProvider], operation: Operation, stream: bool, expected: Usage | None
) -> None:
    hook = RecordingHook()
    service = pipeline(kind("m"), hooks=[hook])
    ctx = context()
    if stream:
        chunks = await service.stream(ctx, call(operation, stream))
        assert [item async for item in chunks]
    else:
        await service.complete(ctx, call(operation, stream))
    assert ctx.usage == expected
    assert [end.usage for end in hook.ends] == [expected]


async def test_usage_is_read_for_the_hooks_only() -> None:
    """With an empty chain nothing reads `ctx.usage`, so the pipeline spends nothing on it
    (a stream would need a metering wrapper per chunk); the hooks tests above get it."""
    ctx = context()
    await pipeline(StubProvider("m")).complete(ctx, call(Operation.CHAT, False))
    assert ctx.usage is None


def test_the_chunk_meter_keeps_the_last_usage() -> None:
    ctx = context()
    meter = ChunkMeter(ctx)
    meter({"choices": []})
    assert ctx.usage is None
    meter({"choices": [], "usage": CHAT_USAGE})
    meter({"choices": [], "usage": None})
    assert ctx.usage == CHAT_USAGE


def test_the_event_meter_totals_start_and_delta() -> None:
    ctx: RequestContext = context()
    meter = EventMeter(ctx)
    meter(event("message_start", {"message": {"usage": {"input_tokens": 5, "cache_read_input_tokens": 4}}}))
    meter(event("content_block_delta", {"index": 0}))
    assert ctx.usage == usage(9, 0, cached=4)
    meter(event("message_delta", {"usage": {"output_tokens": 2, "input_tokens": None}}))
    assert ctx.usage == NATIVE
    meter(("message_delta", b"not json"))
    assert ctx.usage == NATIVE


def traced_context() -> tuple[RequestContext, StreamedAnswer]:
    ctx = context()
    streamed = ctx.extras[STREAMED] = StreamedAnswer()
    return ctx, streamed


def test_the_chunk_meter_notes_a_traced_streams_id_and_each_choices_finish_reason() -> None:
    ctx, streamed = traced_context()
    meter = ChunkMeter(ctx)
    meter({"id": "chatcmpl-7", "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]})
    meter({"id": "chatcmpl-7", "choices": [{"index": 1, "delta": {}, "finish_reason": "length"}]})
    meter({"id": "chatcmpl-7", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    meter({"id": "chatcmpl-7", "choices": [], "usage": CHAT_USAGE})
    assert (streamed.id, streamed.finish_reasons()) == ("chatcmpl-7", ["tool_calls", "length"])
    assert ctx.usage == CHAT_USAGE


def test_the_event_meter_notes_a_traced_streams_id_and_stop_reason() -> None:
    ctx, streamed = traced_context()
    meter = EventMeter(ctx)
    meter(event("message_start", {"message": {"id": "msg_01", "usage": {"input_tokens": 5}}}))
    meter(event("content_block_delta", {"index": 0}))
    meter(event("message_delta", {"delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 2}}))
    assert (streamed.id, streamed.finish_reasons()) == ("msg_01", ["max_tokens"])


def test_the_response_event_meter_notes_the_terminal_responses_id_and_status() -> None:
    ctx, streamed = traced_context()
    meter = ResponseEventMeter(ctx)
    meter({"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}})
    assert streamed.id is None
    incomplete = {"incomplete_details": {"reason": "max_output_tokens"}}
    meter(
        {
            "type": "response.incomplete",
            "response": {"id": "resp_1", "object": "response", "status": "incomplete", **incomplete},
        }
    )
    assert (streamed.id, streamed.finish_reasons()) == ("resp_1", ["max_output_tokens"])


def test_an_untraced_stream_notes_nothing() -> None:
    ctx = context()
    ChunkMeter(ctx)({"id": "chatcmpl-7", "choices": [{"index": 0, "finish_reason": "stop"}]})
    assert STREAMED not in ctx.extras


@pytest.mark.parametrize("response", [{}, {"usage": None}, [], None])
def test_embedding_usage_without_usage(response: Any) -> None:
    assert embedding_usage(response) is None
