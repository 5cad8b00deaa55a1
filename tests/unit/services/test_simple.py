"""`/api/chat` translation: the simple body to a chat request, and completions/chunks back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from llm_gateway.core.errors import InvalidRequest, UpstreamConnectionError
from llm_gateway.core.types import ChatChunk, ChatCompletion
from llm_gateway.services.simple import simple_answer, simple_stream, to_chat_request


def test_a_bare_message_becomes_one_user_message() -> None:
    assert to_chat_request({"message": "Hello"}) == {"messages": [{"role": "user", "content": "Hello"}]}


def test_every_field_is_mapped() -> None:
    request = to_chat_request(
        {
            "message": "and now?",
            "model": "gpt-x",
            "system": "be brief",
            "history": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
            ],
            "temperature": 0.2,
            "max_tokens": 64,
            "stream": False,
        }
    )
    assert request == {
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "and now?"},
        ],
        "temperature": 0.2,
        "max_tokens": 64,
    }


def test_stream_asks_the_upstream_for_usage() -> None:
    request = to_chat_request({"message": "x", "stream": True})
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}


def test_history_keeps_only_role_and_content() -> None:
    request = to_chat_request(
        {
            "message": "x",
            "history": [{"role": "developer", "content": "rules"}, {"role": "user", "content": ""}],
        }
    )
    assert request["messages"][:2] == [
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": ""},
    ]


def test_integer_temperature_is_a_number() -> None:
    assert to_chat_request({"message": "x", "temperature": 1})["temperature"] == 1


@pytest.mark.parametrize(
    ("body", "param", "text"),
    [
        ({}, "message", "'message' must be a non-empty string"),
        ({"message": ""}, "message", "'message' must be a non-empty string"),
        ({"message": 3}, "message", "'message' must be a non-empty string"),
        ({"message": ["a"]}, "message", "'message' must be a non-empty string"),
        ({"message": "x", "system": 1}, "system", "'system' must be a string"),
        ({"message": "x", "model": 1}, "model", "'model' must be a string"),
        ({"message": "x", "temperature": "hot"}, "temperature", "'temperature' must be a number"),
        ({"message": "x", "temperature": True}, "temperature", "'temperature' must be a number"),
        ({"message": "x", "max_tokens": 1.5}, "max_tokens", "'max_tokens' must be an integer"),
        ({"message": "x", "max_tokens": "10"}, "max_tokens", "'max_tokens' must be an integer"),
        ({"message": "x", "max_tokens": False}, "max_tokens", "'max_tokens' must be an integer"),
        ({"message": "x", "stream": "yes"}, "stream", "'stream' must be a boolean"),
        ({"message": "x", "stream": 1}, "stream", "'stream' must be a boolean"),
        ({"message": "x", "history": "earlier"}, "history", "'history' must be an array"),
        ({"message": "x", "history": {"role": "user"}}, "history", "'history' must be an array"),
        ({"message": "x", "history": ["hi"]}, "history[0]", "'history[0]' must be"),
        ({"message": "x", "history": [{"role": "user", "content": "a"}, {"role": "user"}]}, "history[1]", ""),
        ({"message": "x", "history": [{"role": "tool", "content": "a"}]}, "history[0]", ""),
        ({"message": "x", "history": [{"role": "user", "content": [{"type": "text"}]}]}, "history[0]", ""),
        ({"message": "x", "top_p": 0.5}, "top_p", "unknown field 'top_p'"),
        ({"message": "x", "messages": []}, "messages", "unknown field 'messages'"),
    ],
)
def test_validation_names_the_field(body: dict[str, Any], param: str, text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_chat_request(body)
    assert caught.value.param == param
    assert caught.value.status_code == 400
    assert text in caught.value.message


def test_the_unknown_field_error_lists_what_is_accepted() -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_chat_request({"message": "x", "prompt": "y"})
    for field in ("message", "model", "system", "history", "temperature", "max_tokens", "stream"):
        assert field in caught.value.message


def completion(
    content: Any, finish: str | None = "stop", usage: dict[str, int] | None = None
) -> ChatCompletion:
    result: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "upstream-1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
        ],
    }
    if usage is not None:
        result["usage"] = usage
    return result  # type: ignore[return-value]


def test_simple_answer() -> None:
    answer = simple_answer(
        completion("Hi there", usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
        "openai",
    )
    assert answer == {
        "reply": "Hi there",
        "model": "upstream-1",
        "provider": "openai",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def test_simple_answer_without_text_or_usage() -> None:
    answer = simple_answer(completion(None, finish="tool_calls"), "p")
    assert answer["reply"] == ""
    assert answer["finish_reason"] == "tool_calls"
    assert answer["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_simple_answer_without_choices() -> None:
    empty: Any = {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": []}
    assert simple_answer(empty, "p") == {
        "reply": "",
        "model": "m",
        "provider": "p",
        "finish_reason": None,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, index: int = 0, usage: Any = None
) -> ChatChunk:
    result: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "up-1"}
    result["choices"] = [] if delta is None else [{"index": index, "delta": delta, "finish_reason": finish}]
    if usage is not None:
        result["usage"] = usage
    return result  # type: ignore[return-value]


async def chunks_of(*items: ChatChunk, fail: Exception | None = None) -> AsyncIterator[ChatChunk]:
    for item in items:
        yield item
    if fail is not None:
        raise fail


async def collect(events: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event async for event in events]


async def test_simple_stream_yields_deltas_then_the_final_answer() -> None:
    source = chunks_of(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hello "}),
        chunk({"content": "there"}, index=1),  # a second choice is not part of the reply
        chunk({"content": "world"}),
        chunk({}, finish="stop"),
        chunk(usage={"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}),
    )
    events = await collect(simple_stream(source, "openai"))
    assert events == [
        {"delta": "Hello "},
        {"delta": "world"},
        {
            "done": True,
            "reply": "Hello world",
            "model": "up-1",
            "provider": "openai",
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
        },
    ]


async def test_simple_stream_of_nothing_still_ends_with_a_final_event() -> None:
    events = await collect(simple_stream(chunks_of(), "mock"))
    assert events == [
        {
            "done": True,
            "reply": "",
            "model": "",
            "provider": "mock",
            "finish_reason": None,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    ]


async def test_simple_stream_passes_an_upstream_failure_on() -> None:
    source = chunks_of(chunk({"content": "par"}), fail=UpstreamConnectionError("cut"))
    events: list[dict[str, Any]] = []
    with pytest.raises(UpstreamConnectionError):
        async for event in simple_stream(source, "p"):
            events.append(event)
    assert events == [{"delta": "par"}]
