"""Chat answers as Responses answers (services/responses_events.py): the Response object, the
event stream's state machine, and the failure events. Every object and event is validated
strictly against the official openai SDK's models, so a misspelt field fails here."""

from __future__ import annotations

from itertools import count
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from llm_gateway.services.responses_events import (
    ResponseEvents,
    base_response,
    chat_usage,
    failure_events,
    response_usage,
    to_response,
)
from llm_gateway.services.responses_request import ToolIndex
from tests.stubs import chunk

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
PATCH = {"type": "custom", "name": "apply_patch", "format": {"type": "text"}}
WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
MCP = {
    "type": "namespace",
    "name": "mcp__docs",
    "description": "docs",
    "tools": [dict(WEATHER, name="search")],
}
TOOLS = [WEATHER, PATCH, MCP]
USAGE = {
    "prompt_tokens": 10,
    "completion_tokens": 4,
    "total_tokens": 14,
    "prompt_tokens_details": {"cached_tokens": 6},
    "completion_tokens_details": {"reasoning_tokens": 2},
}


def ids() -> Any:
    numbers = count()
    return lambda prefix: f"{prefix}_{next(numbers)}"


def base() -> dict[str, Any]:
    return base_response({"model": "m", "tools": TOOLS}, "resp_1", "m", 1_700_000_000)


def strict_response(value: dict[str, Any]) -> Response:
    return Response.model_validate(value, strict=False)


def run(chunks: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    machine = ResponseEvents(base(), ToolIndex(TOOLS), ids())
    events = [event for c in chunks for event in machine.feed(c)] + machine.finish()
    for event in events:
        EVENTS.validate_json(orjson.dumps(event))
    return events, machine.response


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [choice],
        "usage": USAGE,
    }


def test_a_text_answer() -> None:
    response = to_response(completion({"content": "hello"}), base(), ToolIndex(TOOLS), ids())
    parsed = strict_response(response)
    assert parsed.status == "completed" and parsed.output_text == "hello"
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens, parsed.usage.total_tokens) == (10, 4, 14)
    assert parsed.usage.input_tokens_details.cached_tokens == 6
    assert parsed.usage.output_tokens_details.reasoning_tokens == 2


def test_tool_calls_come_back_as_the_items_declared() -> None:
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
        {
            "id": "c2",
            "type": "function",
            "function": {"name": "apply_patch", "arguments": '{"input": "diff"}'},
        },
        {"id": "c3", "type": "function", "function": {"name": "mcp__docs__search", "arguments": "{}"}},
    ]
    message = {"content": None, "tool_calls": calls, "reasoning_content": "thinking"}
    response = to_response(completion(message, "tool_calls"), base(), ToolIndex(TOOLS), ids())
    strict_response(response)
    kinds = [(item["type"], item.get("name"), item.get("namespace")) for item in response["output"]]
    assert kinds == [
        ("reasoning", None, None),
        ("function_call", "get_weather", None),
        ("custom_tool_call", "apply_patch", None),
        ("function_call", "search", "mcp__docs"),
    ]
    assert response["output"][2]["input"] == "diff"
    assert response["output"][0]["summary"] == [{"type": "summary_text", "text": "thinking"}]


def test_a_cut_answer_is_incomplete() -> None:
    response = to_response(completion({"content": "hel"}, "length"), base(), ToolIndex(TOOLS), ids())
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    strict_response(response)


def test_usage_both_ways() -> None:
    usage = response_usage(USAGE)
    assert usage is not None
    assert chat_usage(usage) == USAGE
    assert response_usage(None) is None and chat_usage("x") is None


def test_a_streamed_text_answer_in_order() -> None:
    events, response = run(
        [
            chunk("m", {"role": "assistant", "content": "hel"}),
            chunk("m", {"content": "lo"}, finish="stop"),
            chunk("m", usage=USAGE),  # type: ignore[arg-type]
        ]
    )
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[6]["text"] == "hello"
    assert strict_response(response).output_text == "hello"
    assert response["usage"]["input_tokens"] == 10


def test_streamed_reasoning_then_a_function_call() -> None:
    events, response = run(
        [
            chunk("m", {"role": "assistant", "reasoning_content": "let me "}),
            chunk("m", {"reasoning_content": "look"}),
            chunk(
                "m",
                {
                    "tool_calls": [
                        {"index": 0, "id": "c1", "function": {"name": "get_weather", "arguments": ""}}
                    ]
                },
            ),
            chunk("m", {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            chunk(
                "m",
                {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
                finish="tool_calls",
            ),
        ]
    )
    kinds = [e["type"] for e in events]
    assert kinds[2:5] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
    ]
    assert "response.reasoning_summary_text.done" in kinds
    arguments = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert "".join(arguments) == '{"city":"Paris"}'
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert done["arguments"] == '{"city":"Paris"}' and done["output_index"] == 1
    assert [item["type"] for item in response["output"]] == ["reasoning", "function_call"]
    assert response["output"][1]["call_id"] == "c1" and response["output"][1]["status"] == "completed"


def test_a_streamed_custom_tool_call_sends_its_input_whole() -> None:
    head = {"index": 0, "id": "c1", "function": {"name": "apply_patch", "arguments": '{"inp'}}
    events, response = run(
        [
            chunk("m", {"role": "assistant", "tool_calls": [head]}),
            chunk("m", {"tool_calls": [{"index": 0, "function": {"arguments": 'ut": "*** Begin"}'}}]}),
            chunk("m", {}, finish="tool_calls"),
        ]
    )
    deltas = [e for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert [d["delta"] for d in deltas] == ["*** Begin"]
    assert response["output"][0] == {
        "id": "fc_0",
        "type": "custom_tool_call",
        "call_id": "c1",
        "name": "apply_patch",
        "input": "*** Begin",
    }


def test_a_refusal_is_its_own_part() -> None:
    events, response = run([chunk("m", {"role": "assistant", "refusal": "no"}, finish="stop")])
    assert "response.refusal.done" in [e["type"] for e in events]
    assert response["output"][0]["content"] == [{"type": "refusal", "refusal": "no"}]


def test_a_stream_cut_by_the_length_limit_ends_incomplete() -> None:
    events, response = run([chunk("m", {"role": "assistant", "content": "hel"}, finish="length")])
    assert events[-1]["type"] == "response.incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def test_failure_events_continue_the_numbering() -> None:
    events = failure_events(base(), 7, "upstream went away", "upstream_error", 502)
    for event in events:
        EVENTS.validate_json(orjson.dumps(event))
    assert [(e["type"], e["sequence_number"]) for e in events] == [("error", 7), ("response.failed", 8)]
    assert events[1]["response"]["error"] == {"code": "server_error", "message": "upstream went away"}
    assert failure_events(None, 0, "x", None, 429)[0]["code"] == "rate_limit_exceeded"


pieces = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(reasoning=st.lists(st.text(min_size=1, max_size=8), max_size=4), text=pieces, arguments=pieces)
def test_any_split_of_a_stream_assembles_what_the_whole_answer_says(
    reasoning: list[str], text: list[str], arguments: list[str]
) -> None:
    """The streamed events' final response equals the non-streamed translation of the same
    answer, however the upstream split it, and every event is one the SDK accepts."""
    chunks: list[Any] = [chunk("m", {"role": "assistant"})]
    chunks += [chunk("m", {"reasoning_content": r}) for r in reasoning]
    chunks += [chunk("m", {"content": t}) for t in text]
    head = {"index": 0, "id": "c1", "function": {"name": "get_weather", "arguments": ""}}
    chunks.append(chunk("m", {"tool_calls": [head]}))
    chunks += [chunk("m", {"tool_calls": [{"index": 0, "function": {"arguments": a}}]}) for a in arguments]
    chunks += [chunk("m", {}, finish="tool_calls"), chunk("m", usage=USAGE)]  # type: ignore[arg-type]
    events, streamed = run(chunks)
    message: dict[str, Any] = {"content": "".join(text)}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "".join(arguments)},
    }
    whole = to_response(
        completion({**message, "tool_calls": [call]}, "tool_calls"), base(), ToolIndex(TOOLS), ids()
    )
    assert [dict(i, id=None) for i in streamed["output"]] == [dict(i, id=None) for i in whole["output"]]
    assert streamed["usage"] == whole["usage"] and streamed["status"] == whole["status"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == "".join(text)
    added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    done = [e["output_index"] for e in events if e["type"] == "response.output_item.done"]
    assert added == done == list(range(len(streamed["output"])))
