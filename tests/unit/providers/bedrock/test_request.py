"""OpenAI chat request → Bedrock Converse request, as pure functions."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.providers.bedrock.request import to_converse

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
TOOL: Any = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def converse(**request: Any) -> dict[str, Any]:
    return to_converse(request)  # type: ignore[arg-type]


def test_system_and_developer_messages_become_system_blocks() -> None:
    body = converse(messages=[
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
        {"role": "user", "content": "hi"},
    ])  # fmt: skip
    assert body == {
        "system": [{"text": "Be terse."}, {"text": "Use metric units."}],
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
    }


def test_consecutive_same_role_turns_merge_and_tool_results_join_the_user_turn() -> None:
    body = converse(messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "w", "arguments": '{"city": "Oslo"}'}},
            {"id": "b", "type": "function", "function": {"name": "w", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "a", "content": "cold"},
        {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "warm"}]},
        {"role": "user", "content": "and now?"},
    ], tools=[TOOL])  # fmt: skip
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "weather?"}]},
        {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "a", "name": "w", "input": {"city": "Oslo"}}},
            {"toolUse": {"toolUseId": "b", "name": "w", "input": {}}},
        ]},
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": "a", "content": [{"text": "cold"}]}},
            {"toolResult": {"toolUseId": "b", "content": [{"text": "warm"}]}},
            {"text": "and now?"},
        ]},
    ]  # fmt: skip


def test_blank_text_is_left_out() -> None:
    body = converse(messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "a", "function": {"name": "w", "arguments": "{}"}},
        ]},
    ], tools=[TOOL])  # fmt: skip
    assert body["messages"][1]["content"] == [{"toolUse": {"toolUseId": "a", "name": "w", "input": {}}}]


def test_data_url_images_become_image_blocks() -> None:
    url = f"data:image/jpeg;base64,{PNG}"
    body = converse(
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    )
    assert body["messages"][0]["content"] == [{"image": {"format": "jpeg", "source": {"bytes": PNG}}}]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.png",
        "data:image/bmp;base64,AAAA",
        "data:image/png,rawdata",
        "data:image/png;base64,@@@",
    ],
)
def test_images_bedrock_cannot_take_are_a_400_naming_the_part(url: str) -> None:
    content = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": url}}]
    with pytest.raises(InvalidRequest) as caught:
        converse(messages=[{"role": "user", "content": content}])
    assert caught.value.param == "messages[0].content[1]"


def test_inference_config() -> None:
    body = converse(
        messages=[{"role": "user", "content": "x"}],
        max_tokens=10,
        max_completion_tokens=20,
        temperature=0,
        top_p=0.5,
        stop=["a", "b"],
    )
    assert body["inferenceConfig"] == {
        "maxTokens": 20,
        "temperature": 0,
        "topP": 0.5,
        "stopSequences": ["a", "b"],
    }


def test_tools_and_tool_choice() -> None:
    tool = {
        "type": "function",
        "function": {"name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True},
    }
    body = converse(messages=[{"role": "user", "content": "x"}], tools=[tool], tool_choice="required")
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "f",
                    "description": "d",
                    "inputSchema": {"json": {"type": "object"}},
                    "strict": True,
                }
            }
        ],
        "toolChoice": {"any": {}},
    }
    bare = converse(
        messages=[{"role": "user", "content": "x"}], tools=[{"type": "function", "function": {"name": "g"}}]
    )
    assert bare["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "g", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]
    }


def test_forcing_a_tool_without_tools_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        converse(messages=[{"role": "user", "content": "x"}], tool_choice="required")
    assert caught.value.param == "tool_choice"
    assert "toolConfig" not in converse(messages=[{"role": "user", "content": "x"}], tool_choice="auto")


def test_tool_choice_none_keeps_tools_only_when_the_history_needs_them() -> None:
    plain = converse(messages=[{"role": "user", "content": "x"}], tools=[TOOL], tool_choice="none")
    assert "toolConfig" not in plain
    history = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "a", "function": {"name": "get_weather", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "a", "content": "ok"},
    ]
    assert converse(messages=history, tools=[TOOL], tool_choice="none")["toolConfig"] == {"tools": [
        {"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}
    ]}  # fmt: skip


def test_json_schema_response_format_is_structured_output() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    response_format = {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema}}
    body = converse(messages=[{"role": "user", "content": "x"}], response_format=response_format)
    assert body["outputConfig"] == {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {
        "schema": '{"type":"object","properties":{"a":{"type":"integer"}}}', "name": "thing",
    }}}}  # fmt: skip
    assert "outputConfig" not in converse(
        messages=[{"role": "user", "content": "x"}], response_format={"type": "text"}
    )


def test_metadata_user_service_tier_and_passthrough_fields() -> None:
    body = converse(
        messages=[{"role": "user", "content": "x"}],
        user="u1",
        metadata={"team": "a"},
        service_tier="flex",
        guardrailConfig={"guardrailIdentifier": "g", "guardrailVersion": "1"},
        top_k=5,
    )
    assert body["requestMetadata"] == {"team": "a", "user": "u1"}
    assert body["serviceTier"] == {"type": "flex"}
    assert body["guardrailConfig"] == {"guardrailIdentifier": "g", "guardrailVersion": "1"}
    assert body["additionalModelRequestFields"] == {"top_k": 5}
    assert "serviceTier" not in converse(messages=[{"role": "user", "content": "x"}], service_tier="auto")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed", 1),
        ("n", 2),
        ("logprobs", True),
        ("presence_penalty", 0.5),
        ("parallel_tool_calls", False),
        ("functions", []),
        ("response_format", {"type": "json_object"}),
        ("service_tier", "scale"),
        ("tool_choice", "sometimes"),
    ],
)
def test_fields_converse_cannot_honour_are_rejected_by_name(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        converse(messages=[{"role": "user", "content": "x"}], tools=[TOOL], **{field: value})
    assert caught.value.param == field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 1),
        ("parallel_tool_calls", True),
        ("logprobs", False),
        ("seed", None),
        ("store", False),
        ("logit_bias", {}),
        ("presence_penalty", 0.0),
    ],
)
def test_default_values_of_unsupported_fields_are_accepted(field: str, value: Any) -> None:
    converse(messages=[{"role": "user", "content": "x"}], **{field: value})


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "user", "content": "x", "name": "bob"}, "messages[0].name"),
        ({"role": "function", "content": "x"}, "messages[0].role"),
        ({"role": "tool", "content": "x"}, "messages[0].tool_call_id"),
        ({"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}, "messages[0].content[0]"),
        ({"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}]},
         "messages[0].tool_calls[0].function.arguments"),
        ({"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
         "messages[0].tool_calls[0].id"),
        ({"role": "assistant", "tool_calls": ["call_1"]}, "messages[0].tool_calls[0]"),
        ({"role": "assistant", "content": "x", "audio": {"id": "audio_1"}}, "messages[0].audio"),
        ({"role": "assistant", "content": "x", "function_call": {"name": "f"}}, "messages[0].function_call"),
        ({"role": "assistant", "content": "x", "refusal": ["no"]}, "messages[0].refusal"),
        ({"role": "user", "content": "x", "tool_calls": []}, "messages[0].tool_calls"),
        ({"role": "user", "content": [{"type": "text", "text": {"t": 1}}]}, "messages[0].content[0].text"),
        ({"role": "user", "content": ["hi"]}, "messages[0].content[0]"),
        ("hi", "messages[0]"),
    ],
)  # fmt: skip
def test_messages_converse_cannot_express_are_rejected(message: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        converse(messages=[message])
    assert caught.value.param == param


def test_an_assistant_refusal_string_is_sent_as_text() -> None:
    body = converse(messages=[
        {"role": "user", "content": "help me"},
        {"role": "assistant", "content": "", "refusal": "I can't help with that."},
        {"role": "user", "content": "why?"},
    ])  # fmt: skip
    assert body["messages"][1] == {"role": "assistant", "content": [{"text": "I can't help with that."}]}


def test_history_echoed_from_an_openai_answer_is_accepted() -> None:
    """The OpenAI SDK sends back every key of an answer's message: `annotations` and nulls."""
    echoed: dict[str, Any] = {
        "role": "assistant",
        "content": "a",
        "refusal": None,
        "annotations": [],
        "audio": None,
    }
    body = converse(messages=[{"role": "user", "content": "q"}, echoed])
    assert body["messages"][1] == {"role": "assistant", "content": [{"text": "a"}]}


def tool_turns(*parts: Any) -> list[Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    return [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": list(parts)},
    ]


def test_tool_results_keep_text_and_images() -> None:
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    body = converse(messages=tool_turns({"type": "text", "text": "sunny"}, image), tools=[TOOL])
    assert body["messages"][2]["content"] == [{"toolResult": {"toolUseId": "c1", "content": [
        {"text": "sunny"}, {"image": {"format": "png", "source": {"bytes": PNG}}},
    ]}}]  # fmt: skip


@pytest.mark.parametrize(
    "part",
    [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x"}},
        {"type": "refusal", "refusal": "no"},
    ],
)
def test_tool_result_parts_converse_cannot_carry_are_rejected_by_name(part: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        converse(messages=tool_turns({"type": "text", "text": "ok"}, part), tools=[TOOL])
    assert caught.value.param == "messages[2].content[1]"


@pytest.mark.parametrize(
    ("effort", "sent"), [("minimal", "low"), ("none", "low"), ("medium", "medium"), ("high", "high")]
)
def test_reasoning_effort_is_converse_output_effort(effort: str, sent: str) -> None:
    body = converse(messages=[{"role": "user", "content": "x"}], reasoning_effort=effort)
    assert body["outputConfig"] == {"effort": sent}


def test_reasoning_effort_sits_beside_structured_output() -> None:
    response_format = {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}
    body = converse(
        messages=[{"role": "user", "content": "x"}], response_format=response_format, reasoning_effort="low"
    )
    assert body["outputConfig"]["effort"] == "low"
    assert body["outputConfig"]["textFormat"]["type"] == "json_schema"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"reasoning_effort": ["low"]}, "reasoning_effort"),
        ({"metadata": "team-a"}, "metadata"),
        ({"metadata": {"team": 5}}, "metadata.team"),
        ({"response_format": "json"}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": "s"}}, "response_format.json_schema"),
        ({"stop": 5}, "stop"),
        ({"stop": ["a", None]}, "stop"),
        ({"tools": ["get_weather"]}, "tools[0]"),
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
         "tools[0].function.parameters"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": True}, "top_p"),
        ({"top_k": "5"}, "top_k"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": "10"}, "max_completion_tokens"),
        ({"user": 7}, "user"),
        ({"service_tier": {"type": "flex"}}, "service_tier"),
        ({"stream_options": "yes"}, "stream_options"),
        ({"additionalModelRequestFields": []}, "additionalModelRequestFields"),
        ({"guardrailConfig": "g"}, "guardrailConfig"),
        ({"n": True}, "n"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"messages": {"role": "user"}}, "messages"),
    ],
)  # fmt: skip
def test_malformed_values_are_400s_naming_the_field(fields: dict[str, Any], param: str) -> None:
    fields.setdefault("messages", [{"role": "user", "content": "x"}])
    with pytest.raises(InvalidRequest) as caught:
        converse(**fields)
    assert caught.value.param == param
