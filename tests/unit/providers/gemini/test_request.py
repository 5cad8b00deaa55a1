"""OpenAI chat request → Gemini request: the pure translation functions."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.providers.gemini.request import function_response, media_part, to_contents, to_gemini


def gemini(**request: Any) -> dict[str, Any]:
    request.setdefault("messages", [{"role": "user", "content": "hi"}])
    return to_gemini(request)  # type: ignore[arg-type]


def rejected(**request: Any) -> str | None:
    with pytest.raises(InvalidRequest) as caught:
        gemini(**request)
    return caught.value.param


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": list(parts)}]}


def test_minimal_request() -> None:
    assert gemini(model="m", stream=False, user="u") == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]
    }


def test_roles_system_and_merging() -> None:
    system, contents = to_contents(
        [
            {"role": "system", "content": "s1"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
            {"role": "developer", "content": [{"type": "text", "text": "s2"}]},
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": [{"type": "text", "text": "d"}], "refusal": None},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "e", "name": "bob"},
        ]
    )
    assert system == [{"text": "s1"}, {"text": "s2"}]
    assert contents == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}, {"text": "d"}]},
        {"role": "user", "parts": [{"text": "e"}]},
    ]


def test_tool_calls_and_results_round_trip_with_signature() -> None:
    call = {"id": "call_1_sig_ab-_cd", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    _, contents = to_contents(
        [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1_sig_ab-_cd", "content": '{"ok": true}'},
            {"role": "user", "content": "and?"},
        ]
    )
    assert contents[1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "ab+/cd=="}],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "f", "response": {"ok": True}}}, {"text": "and?"}],
    }


def test_function_response_wraps_non_objects() -> None:
    assert function_response("sunny") == {"result": "sunny"}
    assert function_response("[1, 2]") == {"result": "[1, 2]"}
    assert function_response('{"a": 1}') == {"a": 1}


def test_generation_config() -> None:
    body = gemini(
        temperature=0,
        top_p=1,
        top_k=3,
        n=2,
        seed=1,
        max_tokens=10,
        stop="x",
        presence_penalty=0.1,
        frequency_penalty=-0.1,
        logprobs=True,
        top_logprobs=2,
        response_format={"type": "json_object"},
        reasoning_effort="none",
    )
    assert body["generationConfig"] == {
        "temperature": 0,
        "topP": 1,
        "topK": 3,
        "candidateCount": 2,
        "seed": 1,
        "maxOutputTokens": 10,
        "stopSequences": ["x"],
        "presencePenalty": 0.1,
        "frequencyPenalty": -0.1,
        "responseLogprobs": True,
        "logprobs": 2,
        "responseMimeType": "application/json",
        "thinkingConfig": {"thinkingBudget": 0},
    }


def test_max_completion_tokens_wins_and_nulls_are_absent() -> None:
    body = gemini(max_tokens=10, max_completion_tokens=20, temperature=None, response_format={"type": "text"})
    assert body["generationConfig"] == {"maxOutputTokens": 20}


def test_tools_and_tool_choice() -> None:
    tools = [
        {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}
    ]
    body = gemini(tools=tools, tool_choice="none")
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {"name": "f", "description": "d", "parametersJsonSchema": {"type": "object"}}
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert gemini(tool_choice="required")["toolConfig"]["functionCallingConfig"] == {"mode": "ANY"}


def test_media_parts() -> None:
    assert media_part("data:image/webp;base64,AAAA", "p") == {
        "inlineData": {"mimeType": "image/webp", "data": "AAAA"}
    }
    assert media_part("https://x.test/a.png", "p") == {
        "fileData": {"mimeType": "image/png", "fileUri": "https://x.test/a.png"}
    }
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "mp3"}}
    pdf = {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"}}
    _, contents = to_contents([{"role": "user", "content": [audio, pdf]}])
    assert contents[0]["parts"] == [
        {"inlineData": {"mimeType": "audio/mp3", "data": "AAAA"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "AAAA"}},
    ]


@pytest.mark.parametrize(
    "url", ["https://x.test/image", "data:image/png,raw", "data:image/png;base64,!!!", "ftp://x.test/a.png"]
)
def test_unusable_media_urls_are_400s(url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        media_part(url, "messages[0].content[1].image_url.url")
    assert caught.value.param == "messages[0].content[1].image_url.url"


@pytest.mark.parametrize(
    ("request_fields", "param"),
    [
        ({"logit_bias": {"1": 1}}, "logit_bias"),
        ({"audio": {}}, "audio"),
        ({"functions": []}, "functions"),
        ({"temperature": "hot"}, "temperature"),
        ({"n": 1.5}, "n"),
        ({"seed": True}, "seed"),
        ({"stop": [1]}, "stop"),
        ({"logprobs": 1}, "logprobs"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format.json_schema.schema"),  # noqa: E501
        ({"reasoning_effort": "max"}, "reasoning_effort"),
        ({"reasoning_effort": {"level": "high"}}, "reasoning_effort"),
        ({"tool_choice": {"type": "function", "function": {}}}, "tool_choice"),
        ({"stream_options": ["include_usage"]}, "stream_options"),
        ({"tools": {}}, "tools"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": 1}}]}, "tools[0].function.parameters"),  # noqa: E501
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls"),
        ({"stream_options": {"include_obfuscation": True}}, "stream_options.include_obfuscation"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "only"}]}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": None}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "x", "audio": {"id": "a"}}]}, "messages[0].audio"),
        ({"messages": [{"role": "user", "content": "x", "tool_calls": []}]}, "messages[0].tool_calls"),
        ({"messages": [{"role": "user", "content": "x", "refusal": "no"}]}, "messages[0].refusal"),
        ({"messages": [{"role": "assistant", "content": "x", "refusal": 1}]}, "messages[0].refusal"),
        ({"store": "yes"}, "store"),
        ({"metadata": ["a"]}, "metadata"),
        ({"messages": [{"role": "system", "content": [{"type": "image_url"}]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages[0].content[0].type"),
        (user({"type": "file", "file": {"file_id": "f"}}), "messages[0].content[0].file.file_data"),
        (user({"type": "input_audio", "input_audio": {"data": "A", "format": "ogg"}}), "messages[0].content[0].input_audio.format"),  # noqa: E501
        ({"messages": [{"role": "tool", "tool_call_id": "x", "content": "y"}]}, "messages[0].tool_call_id"),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "1"}}]}]},  # noqa: E501
            "messages[0].tool_calls[0].function.arguments",
        ),
    ],
)  # fmt: skip
def test_untranslatable_fields_are_400s_naming_the_field(request_fields: dict[str, Any], param: str) -> None:
    assert rejected(**request_fields) == param


def test_openai_dashboard_fields_and_no_bias_are_accepted_and_not_sent() -> None:
    """As for the anthropic provider: `store` and `metadata` only concern OpenAI's dashboard."""
    defaults = {"store": False, "metadata": {}, "logit_bias": {}}
    for fields in (defaults, {"store": True, "metadata": {"k": "v"}}):
        assert gemini(**fields) == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_history_echoed_from_an_openai_answer_is_accepted() -> None:
    """The OpenAI SDK sends back every key of an answer's message: `annotations` and nulls."""
    echoed: dict[str, Any] = {
        "role": "assistant",
        "content": "a",
        "refusal": None,
        "annotations": [],
        "audio": None,
    }
    _, contents = to_contents([{"role": "user", "content": "q"}, echoed])
    assert contents[1] == {"role": "model", "parts": [{"text": "a"}]}
