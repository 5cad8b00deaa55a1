"""ConverseStream decoding and the Converse-events → OpenAI-chunks state machine."""

from __future__ import annotations

import itertools
import struct
from typing import Any

import orjson
import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.errors import (
    ContextLengthExceeded,
    ProviderError,
    UpstreamConnectionError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from llm_gateway.core.types import ChatChunk
from llm_gateway.providers.bedrock.provider import BedrockProvider, BedrockSettings
from llm_gateway.providers.bedrock.response import from_converse
from llm_gateway.providers.bedrock.stream import BedrockStream, EventDecoder
from llm_gateway.providers.transport import HttpClient
from tests.fakes.bedrock import converse_events, encode_message, event_frame, exception_frame
from tests.gateway import UPSTREAM_CLIENT

USAGE = {"inputTokens": 7, "outputTokens": 3, "totalTokens": 10}


def test_the_fakes_encoder_speaks_botocores_framing() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "héllo"}}))
    buffer.add_data(exception_frame("throttlingException", "slow down"))
    first, second = list(buffer)
    assert first.headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert orjson.loads(first.payload)["delta"] == {"text": "héllo"}
    assert second.headers[":exception-type"] == "throttlingException"
    assert orjson.loads(second.payload) == {"message": "slow down"}


def test_decoder_reassembles_messages_split_anywhere() -> None:
    events = converse_events([{"text": "one two three"}], "end_turn", USAGE)
    data = b"".join(event_frame(event, payload) for event, payload in events)
    decoder = EventDecoder("p")
    decoded = [item for i in range(0, len(data), 5) for item in decoder.feed(data[i : i + 5])]
    assert [event for event, _ in decoded] == [event for event, _ in events]
    assert all(payload.items() >= events[i][1].items() for i, (_, payload) in enumerate(decoded))


def test_a_corrupt_frame_is_an_upstream_failure() -> None:
    frame = bytearray(event_frame("messageStart", {"role": "assistant"}))
    frame[-1] ^= 0xFF
    with pytest.raises(UpstreamUnavailable, match="malformed event stream"):
        list(EventDecoder("p").feed(bytes(frame)))


@pytest.mark.parametrize(
    ("exception_type", "message", "error"),
    [
        ("throttlingException", "slow down", UpstreamRateLimited),
        ("serviceUnavailableException", "busy", UpstreamOverloaded),
        ("modelStreamErrorException", "model broke", UpstreamUnavailable),
        ("internalServerException", "oops", UpstreamUnavailable),
        ("validationException", "Input is too long for requested model.", ContextLengthExceeded),
    ],
)
def test_exception_events_raise_gateway_errors(
    exception_type: str, message: str, error: type[ProviderError]
) -> None:
    with pytest.raises(error) as caught:
        list(EventDecoder("p").feed(exception_frame(exception_type, message)))
    assert message in caught.value.message
    assert "during the stream" in caught.value.message


def test_error_messages_raise_too() -> None:
    headers = {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}
    with pytest.raises(UpstreamUnavailable, match="InternalFailure: boom"):
        list(EventDecoder("p").feed(encode_message(headers, b"")))


def test_text_then_two_tools_number_tool_calls_in_order() -> None:
    content: list[dict[str, Any]] = [
        {"text": "Checking."},
        {"toolUse": {"toolUseId": "a", "name": "w", "input": {"city": "Oslo"}}},
        {"toolUse": {"toolUseId": "b", "name": "t", "input": {}}},
    ]
    stream = BedrockStream("chatcmpl-x", "m", 1, include_usage=False)
    chunks = [
        c
        for event, payload in converse_events(content, "tool_use", USAGE)
        for c in stream.feed(event, payload)
    ]
    calls = [call for c in chunks for call in c["choices"][0]["delta"].get("tool_calls", [])]
    assert [(c["index"], c.get("id")) for c in calls if "id" in c] == [(0, "a"), (1, "b")]
    assert {c["index"] for c in calls} == {0, 1}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert all(c["id"] == "chatcmpl-x" and c["model"] == "m" and c["created"] == 1 for c in chunks)
    assert stream.usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def test_usage_chunk_only_when_asked_and_after_the_finish_chunk() -> None:
    events = converse_events([{"text": "hi"}], "end_turn", USAGE)
    stream = BedrockStream("id", "m", 0, include_usage=True)
    chunks = [c for event, payload in events for c in stream.feed(event, payload)]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1].get("usage") == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def test_reasoning_deltas_are_reasoning_content() -> None:
    stream = BedrockStream("id", "m", 0, include_usage=False)
    delta = {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}
    assert stream.feed("contentBlockDelta", delta)[0]["choices"][0]["delta"] == {"reasoning_content": "hmm"}
    assert (
        stream.feed(
            "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "s"}}}
        )
        == []
    )


def test_a_stream_without_message_stop_is_incomplete() -> None:
    stream = BedrockStream("id", "m", 0, include_usage=False)
    stream.feed("messageStart", {"role": "assistant"})
    with pytest.raises(UpstreamConnectionError, match="ended the stream early"):
        stream.finish("p")


def reassemble(chunks: list[ChatChunk]) -> tuple[dict[str, Any], str | None, Any]:
    """A streamed answer folded back into one message, as a client would."""
    text, reasoning, finish, usage = "", "", None, None
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            delta: Any = choice["delta"]
            text += delta.get("content") or ""
            reasoning += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] = (call.get("function") or {}).get("name") or slot["name"]
                slot["arguments"] += (call.get("function") or {}).get("arguments") or ""
            finish = choice["finish_reason"] or finish
    message = {"content": text, "tool_calls": [calls[i] for i in sorted(calls)]}
    return message, finish, usage


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
blocks = st.one_of(
    st.builds(lambda t: {"text": t}, st.text(min_size=1, max_size=40)),
    st.builds(
        lambda i, n, a: {"toolUse": {"toolUseId": f"tooluse_{i}", "name": n, "input": a}},
        st.integers(0, 10**6),
        st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
        st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    ),
)
stop_reasons = st.sampled_from(
    ["end_turn", "tool_use", "max_tokens", "stop_sequence", "guardrail_intervened"]
)
usages = st.builds(
    lambda i, o, r: {
        "inputTokens": i,
        "outputTokens": o,
        "totalTokens": i + o,
        **({"cacheReadInputTokens": r} if r else {}),
    },
    st.integers(0, 10**5),
    st.integers(0, 10**5),
    st.integers(0, 100),
)


@settings(max_examples=150, deadline=None)
@given(
    content=st.lists(blocks, min_size=1, max_size=5), stop_reason=stop_reasons, usage=usages, data=st.data()
)
def test_a_translated_stream_reassembles_to_the_non_streamed_message(
    content: list[dict[str, Any]], stop_reason: str, usage: dict[str, Any], data: st.DataObject
) -> None:
    def split(text: str) -> list[str]:
        cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=4)))
        bounds = [0, *[c for c in cuts if c < len(text)], len(text)]
        return [text[a:b] for a, b in itertools.pairwise(bounds) if text[a:b]]

    events = converse_events(content, stop_reason, usage, split)
    frames = b"".join(event_frame(event, payload) for event, payload in events)
    decoder, stream = EventDecoder("p"), BedrockStream("id", "m", 0, include_usage=True)
    chunks = [
        c
        for i in range(0, len(frames), 13)
        for e, p in decoder.feed(frames[i : i + 13])
        for c in stream.feed(e, p)
    ]
    stream.finish("p")

    expected = from_converse(
        {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason,
            "usage": usage,
        },
        "m",
    )
    message, finish, streamed_usage = reassemble(chunks)
    choice = expected["choices"][0]
    assert message["content"] == (choice["message"]["content"] or "")
    expected_calls = choice["message"].get("tool_calls") or []
    assert [(c["id"], c["name"]) for c in message["tool_calls"]] == [
        (c["id"], c["function"]["name"]) for c in expected_calls
    ]
    assert [orjson.loads(c["arguments"]) for c in message["tool_calls"]] == [
        orjson.loads(c["function"]["arguments"]) for c in expected_calls
    ]
    assert finish == choice["finish_reason"]
    assert streamed_usage == expected["usage"]


def test_frame_lengths_are_what_the_prelude_says() -> None:
    frame = event_frame("messageStop", {"stopReason": "end_turn"})
    total, headers_length = struct.unpack(">II", frame[:8])
    assert total == len(frame) and 0 < headers_length < total


def test_good_events_before_an_exception_in_the_same_read_come_through_first() -> None:
    """TCP may deliver a text delta and the exception after it in one read: the delta must
    reach the client before the error (which then ends the stream as an error event)."""
    block = {"type": "bedrock", "region": "eu-west-1", "aws_access_key_id": "AKIDEXAMPLE"}
    block["aws_secret_access_key"] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    settings = BedrockSettings.model_validate(block, context={"environ": {}})
    provider = BedrockProvider("b", settings, HttpClient("b", settings, client=UPSTREAM_CLIENT))
    state = BedrockStream("id", "m", 0, include_usage=False)
    decoder = EventDecoder("b", 1 << 20)
    data = (
        event_frame("messageStart", {"role": "assistant"})
        + event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "echo: "}})
        + exception_frame("throttlingException", "slow down")
    )
    received: list[ChatChunk] = []
    with pytest.raises(UpstreamRateLimited):
        for chunk in provider._translated(decoder, state, data, provider.secrets()):
            received.append(chunk)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in received) == "echo: "
