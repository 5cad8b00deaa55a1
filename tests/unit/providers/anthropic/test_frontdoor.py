"""The front door's reverse translation: Anthropic Messages request → chat request, chat
completion → Anthropic Message, and the count_tokens estimate."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.providers.anthropic.frontdoor import (
    IMAGE_TOKENS,
    estimate_input_tokens,
    message_usage,
    stop_reason,
    to_chat_request,
    to_message,
)


def chat(**body: Any) -> dict[str, Any]:
    body.setdefault("max_tokens", 100)
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return dict(to_chat_request(body))


def rejected(**body: Any) -> str | None:
    with pytest.raises(InvalidRequest) as caught:
        chat(**body)
    return caught.value.param


def test_minimal_request() -> None:
    assert chat(model="gpt-x") == {
        "model": "gpt-x",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_sampling_stop_user_and_stream() -> None:
    body = chat(
        temperature=0.2, top_p=0.9, top_k=3, stop_sequences=["END"], metadata={"user_id": "u"}, stream=True
    )
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.9, 3)
    assert body["stop"] == ["END"]
    assert body["user"] == "u"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_max_tokens_is_required() -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_chat_request({"messages": [{"role": "user", "content": "x"}]})
    assert caught.value.param == "max_tokens"


@pytest.mark.parametrize(
    ("field", "value"),
    [("container", "c1"), ("mcp_servers", []), ("inference_geo", "eu")],
)
def test_unknown_or_unsupported_fields_are_rejected(field: str, value: Any) -> None:
    assert rejected(**{field: value}) == field


def test_documented_ignored_fields_pass() -> None:
    body = chat(
        thinking={"type": "enabled", "budget_tokens": 1024},
        service_tier="auto",
        cache_control={"type": "ephemeral"},
        speed="fast",
    )
    assert set(body) == {"max_tokens", "messages"}


def test_output_config() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = chat(output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "max"})
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert body["reasoning_effort"] == "high"
    assert rejected(output_config={"effort": "huge"}) == "output_config.effort"
    assert rejected(output_config={"format": {"type": "json_schema"}}) == "output_config.format"


def test_system_blocks_are_joined() -> None:
    body = chat(
        system=[
            {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "b"},
        ]
    )
    assert body["messages"][0] == {"role": "system", "content": "a\n\nb"}
    assert chat(system="s")["messages"][0] == {"role": "system", "content": "s"}
    assert rejected(system=[{"type": "image"}]) == "system.0"


def test_user_blocks_images_and_documents() -> None:
    content = [
        {"type": "text", "text": "see"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}},
    ]
    (message,) = chat(messages=[{"role": "user", "content": content}])["messages"]
    assert message["content"] == [
        {"type": "text", "text": "see"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
        {
            "type": "file",
            "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBE"},
        },
        {"type": "text", "text": "plain"},
    ]


def test_tool_use_and_results() -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "here:"},
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "sunny"}]},
                {"type": "tool_result", "tool_use_id": "t2", "content": "oops", "is_error": True},
            ],
        },
    ]
    assert chat(messages=messages)["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "w", "arguments": '{"city":"Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "t2", "content": "Error: oops"},
        {"role": "user", "content": "here:"},
    ]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([], "messages"),
        ([{"role": "developer", "content": "x"}], "messages.0.role"),
        ([{"role": "user", "content": [{"type": "search_result"}]}], "messages.0.content.0"),
        ([{"role": "assistant", "content": [{"type": "server_tool_use"}]}], "messages.0.content.0"),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image"}]}],
                }
            ],
            "messages.0.content.0.content.0",
        ),
        (
            [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}],
            "messages.0.content.0.source",
        ),
    ],
)
def test_unsupported_content_is_rejected(messages: list[Any], param: str) -> None:
    assert rejected(messages=messages) == param


def turn(role: str, block: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": role, "content": [block]}]}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"top_k": 2.5}, "top_k"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"stop_sequences": ["END", 1]}, "stop_sequences.1"),
        ({"metadata": "u"}, "metadata"),
        ({"metadata": {"user_id": 7}}, "metadata.user_id"),
        ({"metadata": {"user_id": "u", "team": "a"}}, "metadata.team"),
        ({"tools": {"name": "w"}}, "tools"),
        ({"tools": [{"name": "w", "input_schema": "object"}]}, "tools.0.input_schema"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"tool_choice": {"type": ["auto"]}}, "tool_choice"),
        ({"output_config": {"effort": ["low"]}}, "output_config.effort"),
        ({"messages": [{"role": "user", "content": "x", "name": "ann"}]}, "messages.0.name"),
        (turn("user", {"type": "text", "text": 5}), "messages.0.content.0.text"),
        (turn("assistant", {"type": "tool_use", "name": "f", "input": 1}), "messages.0.content.0.input"),
        (turn("assistant", {"type": "tool_use", "id": "t", "input": {}}), "messages.0.content.0.name"),
        (turn("user", {"type": "tool_result", "content": "r"}), "messages.0.content.0.tool_use_id"),
    ],
)  # fmt: skip
def test_malformed_values_are_400s_naming_the_field(body: dict[str, Any], param: str) -> None:
    assert rejected(**body) == param


def test_the_estimate_refuses_what_it_cannot_read() -> None:
    for body, param in (({"messages": "hi"}, "messages"), ({"messages": [], "tools": 5}, "tools")):
        with pytest.raises(InvalidRequest) as caught:
            estimate_input_tokens(body)
        assert caught.value.param == param


def test_tools_and_tool_choice() -> None:
    tools = [
        {"name": "w", "description": "weather", "input_schema": {"type": "object"}},
        {"type": "custom", "name": "v"},
    ]
    body = chat(tools=tools, tool_choice={"type": "any", "disable_parallel_tool_use": True})
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "w", "parameters": {"type": "object"}, "description": "weather"},
        },
        {"type": "function", "function": {"name": "v", "parameters": {"type": "object"}}},
    ]
    assert body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    assert chat(tools=tools, tool_choice={"type": "auto"})["tool_choice"] == "auto"
    assert chat(tools=tools, tool_choice={"type": "none"})["tool_choice"] == "none"
    named = chat(tools=tools, tool_choice={"type": "tool", "name": "w"})["tool_choice"]
    assert named == {"type": "function", "function": {"name": "w"}}
    assert rejected(tools=[{"type": "bash_20250124", "name": "bash"}]) == "tools.0"
    assert rejected(tools=tools, tool_choice={"type": "sometimes"}) == "tool_choice"


def completion(message: dict[str, Any], finish: str | None = "stop", usage: Any = None) -> Any:
    result: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if usage is not None:
        result["usage"] = usage
    return result


def test_to_message_text_and_usage() -> None:
    usage = {
        "prompt_tokens": 30,
        "completion_tokens": 5,
        "total_tokens": 35,
        "prompt_tokens_details": {"cached_tokens": 20},
    }
    assert to_message(completion({"role": "assistant", "content": "hi"}, usage=usage)) == {
        "id": "chatcmpl-1",
        "type": "message",
        "role": "assistant",
        "model": "gpt-x",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 20,
        },
    }


def test_to_message_tool_calls() -> None:
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "w", "arguments": '{"city": "Paris"}'}},
        {"id": "c2", "type": "function", "function": {"name": "v", "arguments": ""}},
        {"id": "c3", "type": "function", "function": {"name": "u", "arguments": "not json"}},
    ]
    message = to_message(
        completion({"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls")
    )
    assert message["stop_reason"] == "tool_use"
    assert message["content"] == [
        {"type": "tool_use", "id": "c1", "name": "w", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "c2", "name": "v", "input": {}},
        {"type": "tool_use", "id": "c3", "name": "u", "input": {"_raw_arguments": "not json"}},
    ]


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_stop_reasons(finish: str | None, expected: str) -> None:
    assert stop_reason(finish) == expected


def test_message_usage_without_usage() -> None:
    assert message_usage(None) == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_estimate_is_about_four_characters_per_token() -> None:
    assert estimate_input_tokens({"messages": [{"role": "user", "content": "x" * 400}]}) == 100 + 3
    with_image = {
        "system": "y" * 40,
        "messages": [
            {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "u"}}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "w", "input": {}}]},
        ],
    }
    assert estimate_input_tokens(with_image) == 11 + 6 + IMAGE_TOKENS  # ceil((40 + 1 + 2) / 4) = 11
    tools = [{"name": "w", "input_schema": {"type": "object"}}]
    base = {"messages": [{"role": "user", "content": "hi"}]}
    assert estimate_input_tokens({**base, "tools": tools}) > estimate_input_tokens(base)
