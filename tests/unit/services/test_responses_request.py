"""A Responses API request as a chat request (services/responses_request.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llm_gateway.core.errors import InvalidRequest, NotFound
from llm_gateway.services.responses_request import (
    ToolIndex,
    builtin_tools,
    check_request,
    input_items,
    to_chat_request,
)

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}
PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
}
MCP = {
    "type": "namespace",
    "name": "mcp__docs",
    "description": "the docs server",
    "tools": [{"type": "function", "name": "search", "parameters": {"type": "object", "properties": {}}}],
}


def chat(**body: Any) -> dict[str, Any]:
    return dict(to_chat_request({"model": "m", **body}))


def test_a_string_input_is_one_user_message_after_the_instructions() -> None:
    assert chat(input="hi", instructions="Be brief.")["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]


def test_message_items_with_parts() -> None:
    image = {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"}
    items = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "look"}, image]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a cat"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
    ]
    assert chat(input=items)["messages"] == [
        {"role": "system", "content": "rules"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
            ],
        },
        {"role": "assistant", "content": "a cat"},
        {"role": "user", "content": "thanks"},
    ]


def test_tool_calls_and_their_outputs() -> None:
    items = [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "rain"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
    ]
    messages = chat(input=items, tools=[WEATHER])["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            },
            {
                "id": "c2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
            },
        ],
    }
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "rain"},
    ]


def test_function_custom_and_namespaced_tools_become_chat_functions() -> None:
    request = chat(input="go", tools=[WEATHER, PATCH, MCP])
    functions = [tool["function"] for tool in request["tools"]]
    assert functions[0] == {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": WEATHER["parameters"],
        "strict": True,
    }
    assert functions[1]["name"] == "apply_patch"
    assert functions[1]["parameters"]["required"] == ["input"]
    assert "lark" in functions[1]["description"] and "start: /.+/" in functions[1]["description"]
    assert functions[2]["name"] == "mcp__docs__search"


def test_custom_and_namespaced_calls_in_history_use_the_chat_names() -> None:
    items = [
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
        {
            "type": "function_call",
            "call_id": "c2",
            "name": "search",
            "namespace": "mcp__docs",
            "arguments": "{}",
        },
    ]
    messages = chat(input=items, tools=[PATCH, MCP])["messages"]
    first = messages[0]["tool_calls"][0]["function"]
    assert first["name"] == "apply_patch"
    assert orjson.loads(first["arguments"]) == {"input": "*** Begin Patch"}
    assert messages[1] == {"role": "tool", "tool_call_id": "c1", "content": "done"}
    assert messages[2]["tool_calls"][0]["function"]["name"] == "mcp__docs__search"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"tool_choice": "auto"}),
        ("required", {"tool_choice": "required"}),
        (
            {"type": "function", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
        (
            {"type": "custom", "name": "apply_patch"},
            {"type": "function", "function": {"name": "apply_patch"}},
        ),
    ],
)
def test_tool_choice(choice: Any, expected: Any) -> None:
    request = chat(input="go", tools=[WEATHER, PATCH], tool_choice=choice)
    assert request["tool_choice"] == expected.get("tool_choice", expected)


def test_allowed_tools_narrows_the_tool_list() -> None:
    choice = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "get_weather"}],
    }
    request = chat(input="go", tools=[WEATHER, PATCH], tool_choice=choice)
    assert request["tool_choice"] == "required"
    assert [t["function"]["name"] for t in request["tools"]] == ["get_weather"]


def test_settings_map_onto_chat_fields() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    request = chat(
        input="go",
        max_output_tokens=99,
        temperature=0.2,
        top_p=0.9,
        parallel_tool_calls=False,
        reasoning={"effort": "low", "summary": "auto"},
        text={
            "format": {"type": "json_schema", "name": "a", "schema": schema, "strict": True},
            "verbosity": "low",
        },
        include=["reasoning.encrypted_content"],
        metadata={"k": "v"},
        store=True,
        truncation="auto",
        stream=True,
    )
    assert request["max_completion_tokens"] == 99
    assert (request["temperature"], request["top_p"], request["parallel_tool_calls"]) == (0.2, 0.9, False)
    assert request["reasoning_effort"] == "low"
    assert request["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "a", "schema": schema, "strict": True},
    }
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    for absent in (
        "metadata",
        "store",
        "truncation",
        "include",
        "text",
        "reasoning",
        "input",
        "max_output_tokens",
    ):
        assert absent not in request


def test_a_json_object_format_and_a_text_format() -> None:
    assert chat(input="go", text={"format": {"type": "json_object"}})["response_format"] == {
        "type": "json_object"
    }
    assert "response_format" not in chat(input="go", text={"format": {"type": "text"}})


def test_history_comes_before_the_new_input() -> None:
    history = [
        {"type": "message", "role": "user", "content": "my name is Ada"},
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hi Ada"}],
        },
    ]
    request = to_chat_request({"model": "m", "input": "who am I?"}, history)
    assert [m["content"] for m in request["messages"]] == ["my name is Ada", "hi Ada", "who am I?"]


@pytest.mark.parametrize("tool", ["web_search", "file_search", "code_interpreter", "image_generation", "mcp"])
def test_a_builtin_tool_is_refused_by_name(tool: str) -> None:
    body = {"model": "m", "input": "x", "tools": [WEATHER, {"type": tool}]}
    assert builtin_tools(body) == [tool]
    with pytest.raises(InvalidRequest, match=repr(tool)) as raised:
        to_chat_request(body)
    assert raised.value.param == "tools"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"background": True}, "background"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"include": ["nonsense"]}, "include"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]}, "input"),
        ({"text": {"format": {"type": "xml"}}}, "text.format"),
        ({"tool_choice": {"type": "web_search"}}, "tools"),
    ],
)
def test_what_cannot_be_translated_is_a_400(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        to_chat_request({"model": "m", "input": "x", **body})
    assert raised.value.param == param


def test_a_prompt_left_for_the_upstream_is_a_404_when_translated() -> None:
    with pytest.raises(NotFound) as raised:
        to_chat_request({"model": "m", "input": "x", "prompt": {"id": "pmpt_1"}})
    assert (raised.value.param, raised.value.code) == ("prompt.id", "template_not_found")
    assert "'pmpt_1'" in raised.value.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": 3}, "model"),
        ({"stream": "yes"}, "stream"),
        ({"previous_response_id": 5}, "previous_response_id"),
        ({"store": "no"}, "store"),
        ({"input": 7}, "input"),
        ({"input": ["not an item"]}, "input"),
    ],
)
def test_malformed_requests(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        check_request(body)
    assert raised.value.param == param


def test_input_items_and_the_tool_index() -> None:
    assert input_items({}) == []
    assert input_items({"input": "x"}) == [{"type": "message", "role": "user", "content": "x"}]
    index = ToolIndex([WEATHER, PATCH, MCP])
    assert index.origin("mcp__docs__search").namespace == "mcp__docs"
    assert index.origin("apply_patch").kind == "custom"
    assert index.origin("unknown").kind == "function"
