"""`MessageEvents`: chat chunks → Anthropic stream events for the front door, including the
property that the events reassemble to the same Message as the non-streamed translation."""

from __future__ import annotations

from typing import Any, cast

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.types import ChatChunk
from llm_gateway.providers.anthropic.events import Event, MessageEvents
from llm_gateway.providers.anthropic.frontdoor import to_message


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> ChatChunk:
    value: Any = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-x",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return cast(ChatChunk, value)


def events_for(chunks: list[ChatChunk]) -> list[Event]:
    machine = MessageEvents(message_id="msg_fallback", model="fallback")
    events = [event for c in chunks for event in machine.feed(c)]
    return events + machine.finish()


def accumulate(events: list[Event]) -> dict[str, Any]:
    """What the anthropic SDK's stream helper builds from the events (its accumulate_event)."""
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    snapshot: dict[str, Any] = orjson.loads(orjson.dumps(events[0][1]["message"]))
    buffers: dict[int, str] = {}
    open_blocks: set[int] = set()
    for name, data in events[1:]:
        assert data["type"] == name
        if name == "content_block_start":
            assert not open_blocks, "one block open at a time"
            assert data["index"] == len(snapshot["content"])
            open_blocks.add(data["index"])
            snapshot["content"].append(dict(data["content_block"]))
        elif name == "content_block_delta":
            block, delta = snapshot["content"][data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            else:
                buffers[data["index"]] = buffers.get(data["index"], "") + delta["partial_json"]
        elif name == "content_block_stop":
            open_blocks.remove(data["index"])
            if buffers.get(data["index"]):
                snapshot["content"][data["index"]]["input"] = orjson.loads(buffers[data["index"]])
        elif name == "message_delta":
            snapshot["stop_reason"] = data["delta"]["stop_reason"]
            snapshot["stop_sequence"] = data["delta"]["stop_sequence"]
            snapshot["usage"].update(data["usage"])
    assert not open_blocks
    return snapshot


def test_text_stream_events() -> None:
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        chunk({}, usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}),
    ]
    chunks[-1]["choices"] = []
    events = events_for(chunks)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0][1]["message"]["id"] == "chatcmpl-1"
    assert events[0][1]["message"]["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 5,
            "output_tokens": 2,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def test_text_then_tool_calls_open_one_block_each() -> None:
    chunks = [
        chunk({"role": "assistant", "content": "Checking."}),
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c1", "type": "function", "function": {"name": "w", "arguments": ""}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "c2", "type": "function", "function": {"name": "v", "arguments": "{}"}}
                ]
            }
        ),
        chunk({}, "tool_calls"),
    ]
    message = accumulate(events_for(chunks))
    assert message["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "c1", "name": "w", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "c2", "name": "v", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use"


def test_an_empty_stream_is_still_a_whole_message() -> None:
    events = events_for([])
    assert [name for name, _ in events] == ["message_start", "message_delta", "message_stop"]
    assert events[0][1]["message"]["id"] == "msg_fallback"


def test_other_choices_are_ignored() -> None:
    other: Any = chunk({"content": "x"})
    other["choices"][0]["index"] = 1
    assert accumulate(events_for([other]))["content"] == []


arguments = st.dictionaries(
    st.text(max_size=6),
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
    max_size=3,
)
calls = st.lists(
    st.tuples(
        st.from_regex(r"call_[a-z0-9]{1,6}", fullmatch=True),
        st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
        arguments,
    ),
    max_size=3,
    unique_by=lambda call: call[0],
)


def split(text: str, sizes: list[int]) -> list[str]:
    parts, at, turn = [], 0, 0
    while at < len(text):
        size = sizes[turn % len(sizes)]
        parts.append(text[at : at + size])
        at, turn = at + size, turn + 1
    return parts


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(max_size=40),
    tool_calls=calls,
    finish=st.sampled_from(["stop", "length", "tool_calls", "content_filter"]),
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    usage=st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(0, 100)),
)
def test_events_reassemble_to_the_non_streamed_message(
    text: str,
    tool_calls: list[tuple[str, str, dict[str, Any]]],
    finish: str,
    sizes: list[int],
    usage: tuple[int, int, int],
) -> None:
    prompt, completion_tokens, cached = usage[0] + usage[2], usage[1], usage[2]
    usage_json: Any = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    openai_calls: list[Any] = [
        {"id": i, "type": "function", "function": {"name": n, "arguments": orjson.dumps(a).decode()}}
        for i, n, a in tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if openai_calls:
        message["tool_calls"] = openai_calls
    completion: Any = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage_json,
    }
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": part}) for part in split(text, sizes)]
    for number, call in enumerate(openai_calls):
        head = {
            "index": number,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        for part in split(call["function"]["arguments"], sizes):
            chunks.append(chunk({"tool_calls": [{"index": number, "function": {"arguments": part}}]}))
    chunks.append(chunk({}, finish))
    chunks.append(chunk({}, usage=usage_json))
    chunks[-1]["choices"] = []
    assert accumulate(events_for(chunks)) == to_message(completion)
