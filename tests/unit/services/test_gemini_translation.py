"""The Gemini front door's translation both ways (services/gemini_request.py and
gemini_response.py): Gemini request → OpenAI chat request, chat completion and chunk
stream → Gemini responses, and the refusals for what cannot be carried across."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.services.gemini_request import (
    count_request,
    embeddings_request,
    json_schema,
    to_chat_request,
)
from llm_gateway.services.gemini_response import (
    GeminiStream,
    embedding_values,
    to_generate_response,
    usage_metadata,
)

USER = {"role": "user", "parts": [{"text": "Weather in Paris?"}]}
CALL = {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}
RESULT = {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 21}}}]}


def test_contents_system_and_generation_config() -> None:
    body = {
        "contents": [USER],
        "systemInstruction": {"parts": [{"text": "Be"}, {"text": "brief."}]},
        "generationConfig": {
            "temperature": 0.5,
            "topP": 0.9,
            "topK": 40,
            "maxOutputTokens": 100,
            "stopSequences": ["END"],
            "candidateCount": 2,
            "seed": 7,
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }
    chat = to_chat_request(body, "gpt", stream=False)
    assert chat == {
        "model": "gpt",
        "messages": [
            {"role": "system", "content": "Be\nbrief."},
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 100,
        "n": 2,
        "seed": 7,
        "stop": ["END"],
    }


def test_a_stream_asks_for_usage() -> None:
    chat = to_chat_request({"contents": [USER]}, "gpt", stream=True)
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}


def test_a_function_call_round_trip_pairs_ids_by_name() -> None:
    chat = to_chat_request({"contents": [USER, CALL, RESULT]}, "gpt", stream=False)
    assistant, tool = chat["messages"][1], chat["messages"][2]
    call = assistant["tool_calls"][0]
    assert assistant["content"] is None
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert tool == {"role": "tool", "tool_call_id": call["id"], "content": '{"t":21}'}


def test_explicit_call_ids_are_kept() -> None:
    call = {"role": "model", "parts": [{"functionCall": {"id": "c1", "name": "f", "args": {}}}]}
    result = {"role": "user", "parts": [{"functionResponse": {"id": "c1", "name": "f", "response": {}}}]}
    messages = to_chat_request({"contents": [USER, call, result]}, "gpt", stream=False)["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "c1" and messages[2]["tool_call_id"] == "c1"


def test_a_response_without_a_call_is_a_400() -> None:
    with pytest.raises(InvalidRequest, match="no earlier functionCall"):
        to_chat_request({"contents": [USER, RESULT]}, "gpt", stream=False)


def test_images_and_thoughts() -> None:
    parts = [{"text": "what is this?"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]
    model_turn = {
        "role": "model",
        "parts": [{"text": "hmm", "thought": True}, {"thoughtSignature": "c2ln"}, {"text": "A cat."}],
    }
    messages = to_chat_request(
        {"contents": [{"role": "user", "parts": parts}, model_turn]}, "m", stream=False
    )["messages"]
    assert messages[0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAAA"},
    }
    assert messages[1] == {"role": "assistant", "content": "A cat."}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contents": [USER], "cachedContent": "c/1"}, "cachedContent"),
        ({"contents": [USER], "tools": [{"googleSearch": {}}]}, "googleSearch"),
        ({"contents": [USER], "tools": [{"codeExecution": {}}]}, "codeExecution"),
        ({"contents": [USER], "generationConfig": {"responseModalities": ["AUDIO"]}}, "responseModalities"),
        ({"contents": [USER], "generationConfig": {"speechConfig": {}}}, "speechConfig"),
        ({"contents": [USER], "generationConfig": {"responseMimeType": "text/x.enum"}}, "responseMimeType"),
        ({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "audio/wav"}}]}]}, "audio/wav"),
        ({"contents": [{"role": "user", "parts": [{"executableCode": {}}]}]}, "executableCode"),
        ({"contents": [{"role": "robot", "parts": []}]}, "role"),
        ({"contents": []}, "contents"),
    ],
)
def test_what_cannot_be_carried_across_is_a_400(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest, match=field):
        to_chat_request(body, "gpt", stream=False)


def test_tools_schema_and_tool_config() -> None:
    declaration = {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {
            "type": "OBJECT",
            "properties": {"city": {"type": "STRING", "nullable": True}, "days": {"type": "INTEGER"}},
            "required": ["city"],
            "propertyOrdering": ["city", "days"],
        },
    }
    other = {"name": "other", "parametersJsonSchema": {"type": "object"}}
    body = {
        "contents": [USER],
        "tools": [{"functionDeclarations": [declaration, other]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
    }
    chat = to_chat_request(body, "gpt", stream=False)
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": ["string", "null"]}, "days": {"type": "integer"}},
                    "required": ["city"],
                },
            },
        }
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.parametrize(("mode", "choice"), [("AUTO", "auto"), ("NONE", "none"), ("ANY", "required")])
def test_tool_modes(mode: str, choice: str) -> None:
    body = {"contents": [USER], "toolConfig": {"functionCallingConfig": {"mode": mode}}}
    assert to_chat_request(body, "gpt", stream=False)["tool_choice"] == choice


def test_response_formats() -> None:
    schema = {"type": "ARRAY", "items": {"type": "STRING"}}
    config = {"responseMimeType": "application/json", "responseSchema": schema}
    chat = to_chat_request({"contents": [USER], "generationConfig": config}, "gpt", stream=False)
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": {"type": "array", "items": {"type": "string"}}},
    }
    config = {"responseMimeType": "application/json"}
    chat = to_chat_request({"contents": [USER], "generationConfig": config}, "gpt", stream=False)
    assert chat["response_format"] == {"type": "json_object"}
    config = {"responseJsonSchema": {"type": "object"}}
    chat = to_chat_request({"contents": [USER], "generationConfig": config}, "gpt", stream=False)
    assert chat["response_format"]["json_schema"]["schema"] == {"type": "object"}


def test_thinking_config_leaves_the_models_default() -> None:
    config = {"thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": True}}
    chat = to_chat_request({"contents": [USER], "generationConfig": config}, "gpt", stream=False)
    assert "reasoning_effort" not in chat
    with pytest.raises(InvalidRequest, match="thinkingConfig"):
        to_chat_request({"contents": [USER], "generationConfig": {"thinkingConfig": 1}}, "g", stream=False)


def test_json_schema_nested() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {"xs": {"type": "ARRAY", "items": {"anyOf": [{"type": "NUMBER"}]}}},
    }
    assert json_schema(schema) == {
        "type": "object",
        "properties": {"xs": {"type": "array", "items": {"anyOf": [{"type": "number"}]}}},
    }


def test_count_request_takes_a_whole_generate_request() -> None:
    inner = {"model": "models/x", "contents": [USER], "systemInstruction": {"parts": [{"text": "hi"}]}}
    assert len(count_request({"generateContentRequest": inner}, "x")["messages"]) == 2
    assert len(count_request({"contents": [USER]}, "x")["messages"]) == 1


def test_embedding_requests() -> None:
    one = {"content": {"parts": [{"text": "a"}, {"text": "b"}]}, "outputDimensionality": 8, "taskType": "X"}
    assert embeddings_request([one], "e") == {"model": "e", "input": ["a\nb"], "dimensions": 8}
    with pytest.raises(InvalidRequest, match="outputDimensionality"):
        embeddings_request([one, {"content": {"parts": [{"text": "c"}]}}], "e")
    with pytest.raises(InvalidRequest, match="model in the URL"):
        embeddings_request([{**one, "model": "models/other"}], "e")
    with pytest.raises(InvalidRequest, match="only text"):
        embeddings_request([{"content": {"parts": [{"inlineData": {}}]}}], "e")
    with pytest.raises(InvalidRequest, match="requests"):
        embeddings_request([], "e")


COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-up",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hi",
                "reasoning_content": "thinking",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 10,
        "completion_tokens": 7,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    },
}


def test_a_completion_as_a_generate_response() -> None:
    response = to_generate_response(COMPLETION, "gpt")
    assert response == {
        "candidates": [
            {
                "content": {
                    "parts": [{"text": "Hi"}, {"functionCall": {"name": "f", "args": {"a": 1}, "id": "c1"}}],
                    "role": "model",
                },
                "index": 0,
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "totalTokenCount": 17,
            "cachedContentTokenCount": 4,
            "thoughtsTokenCount": 2,
        },
        "modelVersion": "gpt-up",
        "responseId": "chatcmpl-1",
    }
    with_thoughts = to_generate_response(COMPLETION, "gpt", thoughts=True)
    assert with_thoughts["candidates"][0]["content"]["parts"][0] == {"text": "thinking", "thought": True}


@pytest.mark.parametrize(
    ("reason", "gemini"),
    [("stop", "STOP"), ("length", "MAX_TOKENS"), ("content_filter", "SAFETY"), ("x", "OTHER")],
)
def test_finish_reasons(reason: str, gemini: str) -> None:
    completion = {**COMPLETION, "choices": [{**COMPLETION["choices"][0], "finish_reason": reason}]}  # type: ignore[dict-item]
    assert to_generate_response(completion, "gpt")["candidates"][0]["finishReason"] == gemini


def test_usage_without_details() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert usage_metadata(usage) == {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}
    assert usage_metadata(None) is None


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "c-1",
        "model": "up",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def test_the_stream_machine() -> None:
    machine = GeminiStream("gpt")
    out = machine.feed(chunk({"role": "assistant", "content": ""}))
    out += machine.feed(chunk({"content": "Hel"}))
    out += machine.feed(chunk({"content": "lo"}))
    head = {"index": 0, "id": "k1", "function": {"name": "f", "arguments": '{"a"'}}
    out += machine.feed(chunk({"tool_calls": [head]}))
    out += machine.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}))
    out += machine.feed(chunk({}, "tool_calls"))
    out += machine.feed(
        {"id": "c-1", "model": "up", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    )
    out += machine.finish()
    texts = [r["candidates"][0]["content"]["parts"] for r in out[:-1]]
    assert texts == [[{"text": "Hel"}], [{"text": "lo"}]]
    last = out[-1]
    assert last["candidates"] == [
        {
            "content": {
                "parts": [{"functionCall": {"name": "f", "args": {"a": 1}, "id": "k1"}}],
                "role": "model",
            },
            "index": 0,
            "finishReason": "STOP",
        }
    ]
    assert last["usageMetadata"]["totalTokenCount"] == 3
    assert (last["modelVersion"], last["responseId"]) == ("up", "c-1")


def test_a_stream_of_text_ends_with_stop_and_no_parts() -> None:
    machine = GeminiStream("gpt")
    machine.feed(chunk({"content": "x"}, "length"))
    [last] = machine.finish()
    assert last["candidates"] == [
        {"content": {"parts": [], "role": "model"}, "index": 0, "finishReason": "MAX_TOKENS"}
    ]
    assert "usageMetadata" not in last


def test_malformed_arguments_are_kept() -> None:
    completion = {**COMPLETION}
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{"}}],
    }
    completion["choices"] = [{"index": 0, "message": message, "finish_reason": "tool_calls"}]  # type: ignore[typeddict-item]
    part = to_generate_response(completion, "g")["candidates"][0]["content"]["parts"][0]
    assert part == {"functionCall": {"name": "f", "args": {"arguments": "{"}, "id": "c"}}


def test_embedding_values_in_input_order() -> None:
    response = {"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]}
    assert embedding_values(response) == [{"values": [1.0]}, {"values": [2.0]}]
    assert orjson.loads(orjson.dumps(embedding_values({"data": []}))) == []
