"""OpenAI-format chat through the gateway to an `anthropic` upstream (the fake Messages API),
with the official openai SDK as the client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

MODELS = {
    "claude-test": "echo",
    "claude-tools": "tools",
    "claude-cache": "cache",
    "claude-thinking": "thinking",
    "claude-max": "max",
    "claude-midstream": "midstream-error",
    "claude-early-error": "early-error",
    "claude-cut": "cut",
    "claude-context": "error-context",
    **{f"claude-error-{s}": f"error-{s}" for s in (400, 401, 403, 404, 413, 429, 500, 529)},
}
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def gateway(
    fake_anthropic_server: tuple[FakeAnthropic, FakeServer], start_gateway: GatewayFactory
) -> GatewayProcess:
    _, server = fake_anthropic_server
    provider = {"type": "anthropic", "base_url": server.url, "api_key": UPSTREAM_KEY, "timeout": 5}
    config = {
        "providers": {"claude": {**provider, "default_max_tokens": 1234}},
        "models": {
            public: {"deployments": [{"provider": "claude", "model": m}]} for public, m in MODELS.items()
        },
        "master_key": MASTER_KEY,
    }
    return start_gateway(config)


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10) as client:
        yield client


def test_plain_text(client: openai.OpenAI, anthropic_fake: FakeAnthropic) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="claude-test", messages=[{"role": "user", "content": "hello claude"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello claude"
    assert completion.choices[0].finish_reason == "stop"
    assert raw.headers["x-llm-gateway-provider"] == "claude"
    received = anthropic_fake.last()
    assert received.path == "/v1/messages"
    assert received.headers["x-api-key"] == UPSTREAM_KEY
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in {k.lower() for k in received.headers}
    assert received.body == {
        "model": "echo",
        "max_tokens": 1234,
        "messages": [{"role": "user", "content": "hello claude"}],
    }


def test_system_prompt_and_multi_turn(client: openai.OpenAI, anthropic_fake: FakeAnthropic) -> None:
    completion = client.chat.completions.create(
        model="claude-test",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "echo: first"},
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": "second"},
            {"role": "user", "content": "third"},
        ],
        max_completion_tokens=50,
        temperature=0.5,
        top_p=0.9,
        stop="END",
        user="user-7",
    )
    assert completion.choices[0].message.content == "echo: second third"
    body = anthropic_fake.last().body
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Answer in English."},
    ]
    assert body["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "echo: first"},
        {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "third"}]},
    ]
    assert body["max_tokens"] == 50
    assert body["temperature"] == 0.5 and body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "user-7"}


def test_image_input_reaches_upstream_as_image_blocks(
    client: openai.OpenAI, anthropic_fake: FakeAnthropic
) -> None:
    content: Any = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]
    completion = client.chat.completions.create(
        model="claude-test", messages=[{"role": "user", "content": content}]
    )
    assert completion.choices[0].message.content == "echo: what is this?"
    blocks = anthropic_fake.last().body["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
    }
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}


def test_tools_round_trip(client: openai.OpenAI, anthropic_fake: FakeAnthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(
        model="claude-tools", messages=messages, tools=TOOLS, tool_choice="auto"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.id == "toolu_fake_01" and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    sent = anthropic_fake.last().body
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert sent["tool_choice"] == {"type": "auto"}

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"})
    second = client.chat.completions.create(model="claude-tools", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "The weather is sunny, 21C."
    assert second.choices[0].finish_reason == "stop"
    turns = anthropic_fake.last().body["messages"]
    assert turns[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_fake_01", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    }
    assert turns[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_fake_01", "content": "sunny, 21C"}],
    }


def test_tool_choice_named_and_parallel_flag(client: openai.OpenAI, anthropic_fake: FakeAnthropic) -> None:
    client.chat.completions.create(
        model="claude-tools",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    assert anthropic_fake.last().body["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
        "disable_parallel_tool_use": True,
    }


def test_streaming_text_with_usage(client: openai.OpenAI, anthropic_fake: FakeAnthropic) -> None:
    stream = client.chat.completions.create(
        model="claude-test",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (3, 4)
    assert anthropic_fake.last().body["stream"] is True


def test_streaming_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="claude-test", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_streaming_tool_call_deltas(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude-tools", messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS, stream=True
    )
    arguments, names, ids, finish, text = "", [], [], None, ""
    argument_deltas = 0
    for chunk in stream:
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for call in delta.tool_calls or []:
            assert call.index == 0
            if call.id:
                ids.append(call.id)
            if call.function and call.function.name:
                names.append(call.function.name)
            if call.function and call.function.arguments:
                arguments += call.function.arguments
                argument_deltas += 1
        finish = chunk.choices[0].finish_reason or finish
    assert text == "Let me check."
    assert ids == ["toolu_fake_01"] and names == ["get_weather"]
    assert json.loads(arguments) == {"city": "Paris"}
    assert argument_deltas > 1
    assert finish == "tool_calls"


def test_usage_counts_cache_tokens(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="claude-cache", messages=[{"role": "user", "content": "a b"}]
    )
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == 2 + 100 + 20
    assert usage.completion_tokens == 3
    assert usage.total_tokens == 125
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 100


def test_stop_reasons_and_thinking(client: openai.OpenAI) -> None:
    limited = client.chat.completions.create(model="claude-max", messages=[{"role": "user", "content": "go"}])
    assert limited.choices[0].finish_reason == "length"
    thought = client.chat.completions.create(
        model="claude-thinking", messages=[{"role": "user", "content": "go"}]
    )
    assert thought.choices[0].message.content == "echo: go"
    assert (thought.choices[0].message.model_extra or {}).get("reasoning_content") == "Let me think."


def test_json_schema_response_format_is_a_forced_tool(
    client: openai.OpenAI, anthropic_fake: FakeAnthropic
) -> None:
    schema: Any = {"type": "object", "properties": {"city": {"type": "string"}}}
    completion = client.chat.completions.create(
        model="claude-tools",
        messages=[{"role": "user", "content": "Where?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
    )
    assert json.loads(completion.choices[0].message.content or "") == {"city": "Paris"}
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.tool_calls is None
    sent = anthropic_fake.last().body
    assert sent["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert sent["tools"][0]["input_schema"] == schema


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 2),
        ("logprobs", True),
        ("frequency_penalty", 0.5),
        ("logit_bias", {"50256": -100}),
        ("audio", {}),
    ],
)
def test_unsupported_fields_are_rejected_by_name(
    client: openai.OpenAI, anthropic_fake: FakeAnthropic, field: str, value: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="claude-test", messages=[{"role": "user", "content": "x"}], extra_body={field: value}
        )
    assert caught.value.param == field
    assert field in caught.value.message
    assert anthropic_fake.requests == []


def test_documented_ignored_fields_are_accepted(client: openai.OpenAI, anthropic_fake: FakeAnthropic) -> None:
    client.chat.completions.create(
        model="claude-test", messages=[{"role": "user", "content": "x"}], seed=7, n=1
    )
    assert "seed" not in anthropic_fake.last().body


@pytest.mark.parametrize(
    ("model", "error", "status", "error_type"),
    [
        ("claude-error-400", openai.BadRequestError, 400, "invalid_request_error"),
        ("claude-error-401", openai.AuthenticationError, 401, "authentication_error"),
        ("claude-error-403", openai.PermissionDeniedError, 403, "permission_error"),
        ("claude-error-404", openai.NotFoundError, 404, "not_found_error"),
        ("claude-error-413", openai.APIStatusError, 413, "invalid_request_error"),
        ("claude-error-429", openai.RateLimitError, 429, "rate_limit_error"),
        ("claude-error-500", openai.InternalServerError, 502, "upstream_error"),
        ("claude-error-529", openai.InternalServerError, 503, "overloaded_error"),
    ],
)
def test_upstream_errors_map_to_gateway_errors(
    client: openai.OpenAI, model: str, error: type[openai.APIStatusError], status: int, error_type: str
) -> None:
    with pytest.raises(error) as caught:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == status
    assert caught.value.type == error_type
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"
        assert caught.value.code == "rate_limit_exceeded"  # the same code as every provider's
    assert UPSTREAM_KEY not in caught.value.response.text


def test_prompt_too_long_is_context_length_exceeded(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="claude-context", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "context_length_exceeded"
    assert "prompt is too long" in caught.value.message


def test_error_event_before_the_first_chunk_is_an_http_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="claude-early-error", messages=[{"role": "user", "content": "x"}], stream=True
        )
    assert caught.value.status_code == 503


def test_error_event_mid_stream_reaches_the_client(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude-midstream", messages=[{"role": "user", "content": "one two"}], stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "echo: "
    assert "overloaded" in str(caught.value.message).lower()


def test_stream_cut_short_is_reported(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude-cut", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError):
        list(stream)
