"""Chat with Bedrock models through the gateway: the official openai SDK in front, the fake
Bedrock runtime (tests/fakes/bedrock.py) behind, which checks every SigV4 signature and the
Converse body, and answers ConverseStream in the binary event-stream framing."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest

from tests.conftest import BEDROCK_MODELS
from tests.fakes.bedrock import API_KEY, CONFIG_KEYS, ENV_KEYS, FakeBedrock

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
HI: Any = [{"role": "user", "content": "hello bedrock"}]


def test_plain_text_signed_with_the_configured_keys(
    bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock
) -> None:
    raw = bedrock_client.chat.completions.with_raw_response.create(model="br-claude", messages=HI)
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello bedrock"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        completion.usage.total_tokens,
    ) == (2, 3, 5)
    assert completion.model == BEDROCK_MODELS["claude"]
    assert completion.id.startswith("chatcmpl-")
    received = bedrock_fake.last()
    assert (received.operation, received.model, received.access_key) == (
        "converse",
        BEDROCK_MODELS["claude"],
        CONFIG_KEYS[0],
    )
    assert received.body == {"messages": [{"role": "user", "content": [{"text": "hello bedrock"}]}]}
    assert "x-amz-security-token" not in {k.lower() for k in received.headers}
    assert raw.headers["x-llm-gateway-provider"] == "bedrock"
    assert not bedrock_fake.rejected


def test_credentials_from_the_aws_environment_with_a_session_token(
    bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock
) -> None:
    completion = bedrock_client.chat.completions.create(model="bedrock-env", messages=HI)
    assert completion.choices[0].message.content == "echo: hello bedrock"
    received = bedrock_fake.last()
    assert received.access_key == ENV_KEYS[0]
    assert received.headers["X-Amz-Security-Token"] == ENV_KEYS[2]
    assert "X-Amz-Security-Token".lower() in received.headers["Authorization"]


def test_bedrock_api_key_is_a_bearer_token(bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock) -> None:
    bedrock_client.chat.completions.create(model="bedrock-key", messages=HI)
    assert bedrock_fake.last().headers["Authorization"] == f"Bearer {API_KEY}"


def test_a_wrong_secret_fails_the_signature_check(
    bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        bedrock_client.chat.completions.create(model="bedrock-wrong-secret", messages=HI)
    assert "signature" in caught.value.message
    assert "not-the-secret" not in str(caught.value.body)
    assert bedrock_fake.rejected and not bedrock_fake.requests


def test_inference_profile_arn_is_signed_as_sent(
    bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock
) -> None:
    for stream in (False, True):
        response = bedrock_client.chat.completions.create(model="br-profile", messages=HI, stream=stream)
        if stream:
            assert (
                "".join(c.choices[0].delta.content or "" for c in response if c.choices)
                == "echo: hello bedrock"
            )
        assert bedrock_fake.last().model == BEDROCK_MODELS["profile"]
    assert not bedrock_fake.rejected


def test_system_multi_turn_and_inference_config(
    bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock
) -> None:
    messages: Any = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how are you?"},
        {"role": "user", "content": [{"type": "text", "text": "answer briefly"}]},
    ]
    completion = bedrock_client.chat.completions.create(
        model="br-claude",
        messages=messages,
        temperature=0.3,
        top_p=0.9,
        max_tokens=64,
        stop="END",
        user="u-7",
    )
    assert completion.choices[0].message.content == "echo: how are you? answer briefly"
    assert bedrock_fake.last().body == {
        "system": [{"text": "You are terse."}],
        "messages": [
            {"role": "user", "content": [{"text": "hi"}]},
            {"role": "assistant", "content": [{"text": "hello"}]},
            {"role": "user", "content": [{"text": "how are you?"}, {"text": "answer briefly"}]},
        ],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.3, "topP": 0.9, "stopSequences": ["END"]},
        "requestMetadata": {"user": "u-7"},
    }


def test_model_specific_fields_go_to_additional_model_request_fields(
    bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock
) -> None:
    extra = {"top_k": 40, "additionalModelRequestFields": {"anthropic_beta": ["x"]}}
    bedrock_client.chat.completions.create(model="br-claude", messages=HI, extra_body=extra)
    assert bedrock_fake.last().body["additionalModelRequestFields"] == {"anthropic_beta": ["x"], "top_k": 40}


@pytest.mark.parametrize(
    ("field", "value"), [("seed", 7), ("logprobs", True), ("n", 2), ("x_future_field", 1)]
)
def test_fields_bedrock_cannot_honour_are_rejected_by_name(
    bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock, field: str, value: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        bedrock_client.chat.completions.create(model="br-claude", messages=HI, extra_body={field: value})
    assert caught.value.body["param"] == field  # type: ignore[index]
    assert field in caught.value.message
    assert not bedrock_fake.requests


def test_image_bytes_reach_bedrock(bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    content: Any = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    completion = bedrock_client.chat.completions.create(
        model="br-image", messages=[{"role": "user", "content": content}]
    )
    assert completion.choices[0].message.content == "I see 1 image(s): png"
    assert bedrock_fake.images == [("png", PNG)]


def test_remote_image_urls_are_a_clear_400(bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock) -> None:
    content: Any = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    with pytest.raises(openai.BadRequestError) as caught:
        bedrock_client.chat.completions.create(
            model="br-image", messages=[{"role": "user", "content": content}]
        )
    assert caught.value.body["param"] == "messages[0].content[0]"  # type: ignore[index]
    assert "data URL" in caught.value.message
    assert not bedrock_fake.requests


def test_tools_full_round_trip(bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock) -> None:
    messages: Any = [{"role": "user", "content": "Weather in Paris?"}]
    first = bedrock_client.chat.completions.create(
        model="br-tools", messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    choice = first.choices[0]
    assert (choice.finish_reason, choice.message.content) == ("tool_calls", "Let me check.")
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "tooluse_fake_1", "get_weather", {"city": "Paris"},
    )  # fmt: skip
    assert bedrock_fake.last().body["toolConfig"] == {
        "tools": [{"toolSpec": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]},
        }}],
        "toolChoice": {"auto": {}},
    }  # fmt: skip
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"})
    second = bedrock_client.chat.completions.create(model="br-tools", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "The weather is sunny, 21C."
    assert second.choices[0].finish_reason == "stop"
    turns = bedrock_fake.last().body["messages"]
    assert turns[1] == {"role": "assistant", "content": [
        {"text": "Let me check."},
        {"toolUse": {"toolUseId": "tooluse_fake_1", "name": "get_weather", "input": {"city": "Paris"}}},
    ]}  # fmt: skip
    assert turns[2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": "tooluse_fake_1", "content": [{"text": "sunny, 21C"}]}},
    ]}  # fmt: skip


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(
    bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock, tool_choice: Any, expected: Any
) -> None:
    bedrock_client.chat.completions.create(
        model="br-tools", messages=HI, tools=[WEATHER_TOOL], tool_choice=tool_choice
    )
    assert bedrock_fake.last().body["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_leaves_the_tools_out(
    bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock
) -> None:
    completion = bedrock_client.chat.completions.create(
        model="br-tools", messages=HI, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert completion.choices[0].message.content == "echo: hello bedrock"
    assert "toolConfig" not in bedrock_fake.last().body


def test_streaming_text_with_usage(bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock) -> None:
    stream = bedrock_client.chat.completions.create(
        model="br-claude",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: one two three"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (3, 4)
    assert len({c.id for c in chunks}) == 1
    assert bedrock_fake.last().operation == "converse-stream"
    assert bedrock_fake.last().headers["Accept"] == "application/vnd.amazon.eventstream"


def test_streaming_without_include_usage_sends_no_usage_chunk(bedrock_client: openai.OpenAI) -> None:
    chunks = list(bedrock_client.chat.completions.create(model="br-claude", messages=HI, stream=True))
    assert all(c.choices and c.usage is None for c in chunks)


def test_streamed_tool_call_deltas(bedrock_client: openai.OpenAI) -> None:
    stream = bedrock_client.chat.completions.create(
        model="br-tools", messages=HI, tools=[WEATHER_TOOL], stream=True
    )
    text, arguments, ids, names, finish = "", "", set(), set(), None
    for chunk in stream:
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for call in delta.tool_calls or []:
            assert call.index == 0
            ids.add(call.id) if call.id else None
            if call.function:
                names.add(call.function.name) if call.function.name else None
                arguments += call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert (text, ids, names, finish) == ("Let me check.", {"tooluse_fake_1"}, {"get_weather"}, "tool_calls")
    assert json.loads(arguments) == {"city": "Paris"}


def test_cache_tokens_are_reported(bedrock_client: openai.OpenAI) -> None:
    usage = bedrock_client.chat.completions.create(model="br-cache", messages=HI).usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens) == (122, 100)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.parametrize(("model", "finish"), [("br-guardrail", "content_filter"), ("br-length", "length")])
def test_stop_reasons(bedrock_client: openai.OpenAI, model: str, finish: str) -> None:
    assert bedrock_client.chat.completions.create(model=model, messages=HI).choices[0].finish_reason == finish
    stream = bedrock_client.chat.completions.create(model=model, messages=HI, stream=True)
    assert [c.choices[0].finish_reason for c in stream if c.choices[0].finish_reason] == [finish]
