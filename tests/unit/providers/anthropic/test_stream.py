"""`AnthropicStream`: Anthropic stream events → OpenAI chunks, including the property that a
streamed answer reassembles to the same message as the same answer not streamed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.errors import UpstreamOverloaded, UpstreamStatusError
from llm_gateway.core.types import ChatChunk
from llm_gateway.providers.anthropic.response import from_anthropic
from llm_gateway.providers.anthropic.stream import AnthropicStream
from tests.fakes.anthropic import message_events


def run(events: list[tuple[str, dict[str, Any]]], **options: Any) -> list[ChatChunk]:
    machine = AnthropicStream(created=1, include_usage=options.pop("include_usage", True), **options)
    chunks = [chunk for name, data in events for chunk in machine.feed(name, data)]
    assert machine.done
    return chunks


def reassemble(chunks: list[ChatChunk]) -> tuple[dict[str, Any], str | None, Any]:
    """What an OpenAI client builds from the chunks: message, finish reason, usage."""
    content: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish, usage = None, None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            delta: dict[str, Any] = dict(choice["delta"])
            content.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call["index"], {"arguments": ""})
                entry.update({k: call[k] for k in ("id",) if k in call})
                function = call.get("function") or {}
                entry["name"] = function.get("name") or entry.get("name")
                entry["arguments"] += function.get("arguments") or ""
            finish = choice["finish_reason"] or finish
    message: dict[str, Any] = {"content": "".join(content)}
    if any(reasoning):
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = [
            {"id": c["id"], "name": c["name"], "arguments": orjson.loads(c["arguments"] or "{}")}
            for _, c in sorted(calls.items())
        ]
    return message, finish, usage


def normalized(completion: Any) -> tuple[dict[str, Any], str | None, Any]:
    choice = completion["choices"][0]
    source = choice["message"]
    message: dict[str, Any] = {"content": source.get("content") or ""}
    if "reasoning_content" in source:
        message["reasoning_content"] = source["reasoning_content"]
    if "tool_calls" in source:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "name": c["function"]["name"],
                "arguments": orjson.loads(c["function"]["arguments"]),
            }
            for c in source["tool_calls"]
        ]
    return message, choice["finish_reason"], completion["usage"]


def anthropic_message(blocks: list[dict[str, Any]], stop_reason: str, **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 4, **usage},
    }


def test_text_stream() -> None:
    events = message_events(anthropic_message([{"type": "text", "text": "Hello world"}], "end_turn"))
    chunks = run(events)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["Hello ", "world"]
    assert all(c["id"] == "msg_1" and c["model"] == "claude-x" and c["created"] == 1 for c in chunks)
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 4,
        "total_tokens": 13,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 0},
    }


def test_without_include_usage_no_usage_chunk() -> None:
    events = message_events(anthropic_message([{"type": "text", "text": "x"}], "end_turn"))
    chunks = run(events, include_usage=False)
    assert all(c["choices"] and "usage" not in c for c in chunks)


def test_tool_calls_are_numbered_by_call_not_by_block() -> None:
    blocks: list[Any] = [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "t2", "name": "w", "input": {"city": "Rome"}},
    ]
    chunks = run(message_events(anthropic_message(blocks, "tool_use")))
    calls = [call for c in chunks if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls", [])]
    heads = [call for call in calls if "id" in call]
    assert [(h["index"], h["id"], h["function"]) for h in heads] == [
        (0, "t1", {"name": "w", "arguments": ""}),
        (1, "t2", {"name": "w", "arguments": ""}),
    ]
    assert all(call["function"]["arguments"] for call in calls if "id" not in call)  # no empty deltas
    message, finish, _ = reassemble(chunks)
    assert finish == "tool_calls"
    assert message["tool_calls"][1] == {"id": "t2", "name": "w", "arguments": {"city": "Rome"}}


def test_cache_usage_and_cumulative_message_delta_usage() -> None:
    events = message_events(
        anthropic_message([{"type": "text", "text": "x"}], "end_turn", cache_read_input_tokens=50)
    )
    _, data = events[-2]
    data["usage"] = {"output_tokens": 7, "input_tokens": 11}
    usage = run(events)[-1]["usage"]
    assert usage is not None
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (61, 7)
    assert usage["prompt_tokens_details"] == {"cached_tokens": 50, "cache_creation_tokens": 0}


def test_the_json_tool_streams_as_content() -> None:
    blocks = [{"type": "tool_use", "id": "t1", "name": "json_response", "input": {"a": [1, 2]}}]
    chunks = run(message_events(anthropic_message(blocks, "tool_use")), json_tool="json_response")
    message, finish, _ = reassemble(chunks)
    assert orjson.loads(message["content"]) == {"a": [1, 2]}
    assert "tool_calls" not in message
    assert finish == "stop"


def test_pings_unknown_events_and_unknown_blocks_are_skipped() -> None:
    machine = AnthropicStream(created=0, include_usage=False)
    assert machine.feed("ping", {"type": "ping"}) == []
    assert machine.feed("some_future_event", {"type": "some_future_event"}) == []
    machine.feed("message_start", anthropic_message([], "end_turn") | {"type": "message_start"})
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "server_tool_use", "id": "s"},
    }
    assert machine.feed("content_block_start", start) == []
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "input_json_delta", "partial_json": "{}"},
    }
    assert machine.feed("content_block_delta", delta) == []


def test_message_stop_without_message_delta_still_finishes() -> None:
    machine = AnthropicStream(created=0, include_usage=False)
    machine.feed("message_start", {"type": "message_start", "message": anthropic_message([], "end_turn")})
    chunks = machine.feed("message_stop", {"type": "message_stop"})
    assert chunks[0]["choices"][0]["finish_reason"] == "stop"
    assert machine.done


def test_an_error_event_raises_a_provider_error() -> None:
    machine = AnthropicStream(created=0, include_usage=False, provider="claude")
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(UpstreamOverloaded) as caught:
        machine.feed("error", overloaded)
    assert caught.value.provider == "claude"
    invalid = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}
    with pytest.raises(UpstreamStatusError):
        machine.feed(None, invalid)


text = st.text(min_size=1, max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
blocks = st.lists(
    st.one_of(
        st.builds(lambda t: {"type": "text", "text": t}, text),
        st.builds(lambda t: {"type": "thinking", "thinking": t, "signature": "s"}, text),
        st.builds(
            lambda i, n, a: {"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": a},
            st.integers(0, 999),
            st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
            st.dictionaries(st.text(max_size=8), json_values, max_size=4),
        ),
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(
    content=blocks,
    stop_reason=st.sampled_from(["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal"]),
    sizes=st.lists(st.integers(1, 7), min_size=1, max_size=5),
    cache=st.integers(0, 1000),
)
def test_stream_reassembles_to_the_non_streamed_answer(
    content: list[dict[str, Any]], stop_reason: str, sizes: list[int], cache: int
) -> None:
    def split(value: str) -> list[str]:
        parts, at, turn = [], 0, 0
        while at < len(value):
            size = sizes[turn % len(sizes)]
            parts.append(value[at : at + size])
            at, turn = at + size, turn + 1
        return parts

    message = anthropic_message(content, stop_reason, cache_read_input_tokens=cache)
    streamed = reassemble(run(message_events(message, split)))
    assert streamed == normalized(from_anthropic(message, created=1))
