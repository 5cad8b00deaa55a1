"""OpenAI chat request → Anthropic Messages request: the pure translation functions."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.providers.anthropic.request import (
    JSON_TOOL,
    convert_messages,
    image_block,
    structured_tool,
    to_anthropic,
)

PDF = "data:application/pdf;base64,JVBERi0x"


def anthropic(**request: Any) -> dict[str, Any]:
    request.setdefault("messages", [{"role": "user", "content": "hi"}])
    return to_anthropic(request, "claude-x", default_max_tokens=4096)  # type: ignore[arg-type]


def rejected(**request: Any) -> str | None:
    with pytest.raises(InvalidRequest) as caught:
        anthropic(**request)
    assert caught.value.status_code == 400
    return caught.value.param


def test_minimal_request_gets_the_default_max_tokens() -> None:
    assert anthropic(model="public-name") == {
        "model": "claude-x",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hi"}],
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_tokens": 10}, 10),
        ({"max_completion_tokens": 20}, 20),
        ({"max_tokens": 10, "max_completion_tokens": 20}, 20),
        ({"max_tokens": None}, 4096),
    ],
)
def test_max_tokens(fields: dict[str, Any], expected: int) -> None:
    assert anthropic(**fields)["max_tokens"] == expected


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"])
def test_bad_max_tokens_is_rejected(value: Any) -> None:
    assert rejected(max_tokens=value) == "max_tokens"


def test_sampling_stop_and_user() -> None:
    body = anthropic(temperature=1.6, top_p=0.5, top_k=40, stop="END", user="u-1", stream=True)
    assert body["temperature"] == 1.0  # clamped to Anthropic's maximum
    assert (body["top_p"], body["top_k"]) == (0.5, 40)
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-1"}
    assert body["stream"] is True
    assert anthropic(stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    assert "stop_sequences" not in anthropic(stop=[])
    assert anthropic(safety_identifier="s-1")["metadata"] == {"user_id": "s-1"}


def test_reasoning_effort_and_thinking() -> None:
    assert anthropic(reasoning_effort="minimal")["output_config"] == {"effort": "low"}
    assert anthropic(reasoning_effort="high")["output_config"] == {"effort": "high"}
    thinking = {"type": "enabled", "budget_tokens": 2048}
    assert anthropic(thinking=thinking)["thinking"] == thinking
    assert rejected(reasoning_effort="extreme") == "reasoning_effort"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 2),
        ("logprobs", True),
        ("top_logprobs", 3),
        ("presence_penalty", 0.1),
        ("frequency_penalty", -0.5),
        ("logit_bias", {"1": 5}),
        ("audio", {"voice": "x"}),
        ("modalities", ["text", "audio"]),
        ("functions", [{"name": "f"}]),
        ("verbosity", "low"),
        ("web_search_options", {}),
    ],
)
def test_fields_anthropic_cannot_honour_are_rejected_by_name(field: str, value: Any) -> None:
    assert rejected(**{field: value}) == field


def test_neutral_values_and_documented_ignored_fields_pass() -> None:
    body = anthropic(
        n=1,
        logprobs=False,
        presence_penalty=0,
        frequency_penalty=0.0,
        logit_bias={},
        modalities=["text"],
        seed=3,
        store=False,
        metadata={"k": "v"},
        service_tier="auto",
        prompt_cache_key="k",
        stream_options={"include_usage": True},
        response_format={"type": "text"},
    )
    assert set(body) == {"model", "max_tokens", "messages"}


def test_system_and_developer_messages_are_lifted_and_turns_merged() -> None:
    system, turns = convert_messages(
        [
            {"role": "system", "content": "s1"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
            {"role": "developer", "content": [{"type": "text", "text": "s2"}]},
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": [{"type": "text", "text": "d"}]},
            {"role": "user", "content": "e", "name": "bob"},
        ]
    )
    assert system == [{"type": "text", "text": "s1"}, {"type": "text", "text": "s2"}]
    assert turns == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
        {"role": "user", "content": "e"},
    ]


def test_a_single_system_message_is_a_string_and_empty_text_is_skipped() -> None:
    system, turns = convert_messages(
        [
            {"role": "system", "content": "only"},
            {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "x"}]},
        ]
    )
    assert system == "only"
    assert turns == [{"role": "user", "content": "x"}]


def test_a_conversation_needs_a_user_or_assistant_turn() -> None:
    assert rejected(messages=[{"role": "system", "content": "s"}]) == "messages"


def test_unknown_role_is_rejected() -> None:
    assert rejected(messages=[{"role": "function", "content": "x", "name": "f"}]) == "messages[0].role"


def test_images_data_and_http_urls() -> None:
    assert image_block("data:image/png;base64,AAAA", "m") == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
    }
    assert image_block("https://x.test/a.jpg", "m") == {
        "type": "image",
        "source": {"type": "url", "url": "https://x.test/a.jpg"},
    }
    with pytest.raises(InvalidRequest):
        image_block("ftp://x.test/a.jpg", "m")
    with pytest.raises(InvalidRequest):
        image_block("data:image/png,AAAA", "m")


def test_user_parts_images_and_pdf_documents() -> None:
    content: Any = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg", "detail": "high"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF}},
    ]
    _, turns = convert_messages([{"role": "user", "content": content}])
    assert turns[0]["content"][1]["source"]["type"] == "url"
    assert turns[0]["content"][2] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
    }


@pytest.mark.parametrize(
    "part",
    [
        {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-1"}},
        {"type": "file", "file": {"file_data": "data:text/plain;base64,eA=="}},
    ],
)
def test_unsupported_user_parts_are_rejected(part: dict[str, Any]) -> None:
    assert (rejected(messages=[{"role": "user", "content": [part]}]) or "").startswith(
        "messages[0].content[0]"
    )


def test_tool_calls_and_results_become_tool_use_and_tool_result_blocks() -> None:
    _, turns = convert_messages(
        [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"city":"Paris"}'},
                    },
                    {"id": "c2", "type": "function", "function": {"name": "t", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "noon"}]},
            {"role": "user", "content": "thanks"},
        ]
    )
    assert turns[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "c1", "name": "w", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "c2", "name": "t", "input": {}},
        ],
    }
    assert turns[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "c2", "content": [{"type": "text", "text": "noon"}]},
            {"type": "text", "text": "thanks"},
        ],
    }


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_tool_call_arguments_must_be_a_json_object(arguments: str) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "w", "arguments": arguments}}
    messages = [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]}]
    assert rejected(messages=messages) == "messages[1].tool_calls[0].function.arguments"


def test_tool_message_needs_its_call_id() -> None:
    assert rejected(messages=[{"role": "tool", "content": "x"}]) == "messages[0].tool_call_id"


def test_tools_and_tool_choice() -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "w", "description": "weather", "parameters": {"type": "object"}},
        },
        {"type": "function", "function": {"name": "t"}},
    ]
    body = anthropic(tools=tools)
    assert body["tools"] == [
        {"name": "w", "description": "weather", "input_schema": {"type": "object"}},
        {"name": "t", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body
    choices = {
        "auto": {"type": "auto"},
        "none": {"type": "none"},
        "required": {"type": "any"},
    }
    for openai_choice, expected in choices.items():
        assert anthropic(tools=tools, tool_choice=openai_choice)["tool_choice"] == expected
    named = {"type": "function", "function": {"name": "w"}}
    assert anthropic(tools=tools, tool_choice=named)["tool_choice"] == {"type": "tool", "name": "w"}
    assert anthropic(tools=tools, parallel_tool_calls=False)["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }
    assert "tool_choice" not in anthropic(tool_choice="none")
    assert anthropic(tools=tools, tool_choice="none", parallel_tool_calls=False)["tool_choice"] == {
        "type": "none"
    }
    assert rejected(tool_choice="required") == "tool_choice"
    assert rejected(tools=tools, tool_choice="sometimes") == "tool_choice"
    assert rejected(tools=[{"type": "custom", "custom": {"name": "x"}}]) == "tools[0]"


def test_json_response_formats_become_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    request = {"response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}}
    body = anthropic(**request)
    assert body["tools"] == [
        {"name": JSON_TOOL, "description": "Answer with JSON matching this schema.", "input_schema": schema}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    assert structured_tool(request) == JSON_TOOL  # type: ignore[arg-type]
    assert anthropic(response_format={"type": "json_object"})["tools"][0]["input_schema"] == {
        "type": "object"
    }
    assert structured_tool({"messages": []}) is None
    array = {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "array"}}}
    assert rejected(response_format=array) == "response_format"
    tools = [{"type": "function", "function": {"name": "w"}}]
    assert rejected(response_format={"type": "json_object"}, tools=tools) == "response_format"


def test_an_assistant_refusal_string_is_sent_as_text() -> None:
    messages = [
        {"role": "user", "content": "help me"},
        {"role": "assistant", "content": None, "refusal": "I can't help with that."},
        {"role": "user", "content": "why?"},
    ]
    assert anthropic(messages=messages)["messages"][1] == {
        "role": "assistant",
        "content": "I can't help with that.",
    }


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "assistant", "content": "x", "audio": {"id": "audio_1"}}, "messages[1].audio"),
        ({"role": "user", "content": "x", "tool_calls": []}, "messages[1].tool_calls"),
        ({"role": "user", "content": "x", "tool_call_id": "c1"}, "messages[1].tool_call_id"),
        ({"role": "system", "content": "x", "refusal": "no"}, "messages[1].refusal"),
        ({"role": "assistant", "content": "x", "refusal": 5}, "messages[1].refusal"),
        ({"role": "assistant", "content": [{"type": "text", "text": 5}]}, "messages[1].content[0].text"),
        ({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}, "messages[1].content[0].image_url.url"),  # noqa: E501
        ({"role": "assistant", "tool_calls": "call"}, "messages[1].tool_calls"),
        ({"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]},
         "messages[1].tool_calls[0].function.name"),
        ("hello", "messages[1]"),
    ],
)  # fmt: skip
def test_message_keys_without_a_meaning_for_their_role_are_rejected(message: Any, param: str) -> None:
    assert rejected(messages=[{"role": "user", "content": "q"}, message]) == param


def test_keys_with_a_documented_meaning_pass() -> None:
    echoed: dict[str, Any] = {
        "role": "assistant",
        "content": "a",
        "name": "bot",
        "reasoning_content": "thought",
        "annotations": [],
        "refusal": None,
        "audio": None,
        "function_call": None,
    }
    assert anthropic(messages=[{"role": "user", "content": "q", "name": "ann"}, echoed])["messages"] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", "hot"),
        ("temperature", {"value": 1}),
        ("top_p", "high"),
        ("top_k", 2.5),
        ("stop", 5),
        ("stop", ["a", 1]),
        ("user", {"id": 1}),
        ("reasoning_effort", {"effort": "low"}),
        ("stream_options", "include_usage"),
        ("parallel_tool_calls", "no"),
        ("tools", {"type": "function"}),
        ("thinking", "on"),
        ("messages", {"role": "user"}),
    ],
)
def test_malformed_values_are_400s_naming_the_field(field: str, value: Any) -> None:
    assert rejected(**{field: value}) == field


def test_tool_parameters_must_be_a_schema_object() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": ["a"]}}
    assert rejected(tools=[tool]) == "tools[0].function.parameters"
