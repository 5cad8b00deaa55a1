"""The Anthropic-compatible front door (`/v1/messages`) driven by the official anthropic SDK:
natively to an `anthropic` upstream, and translated to an OpenAI-compatible one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import pytest

from llm_gateway.providers.anthropic.frontdoor import estimate_input_tokens
from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory, openai_config
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

NATIVE = {
    "claude-test": "echo",
    "claude-tools": "tools",
    "claude-midstream": "midstream-error",
    "claude-error-429": "error-429",
    "claude-error-529": "error-529",
    # Deployments of their own, so that other tests' failures cannot open their breakers:
    "claude-retry": "error-529",
    "claude-early-error": "early-error",
}
TRANSLATED = {
    "gpt-test": "upstream-gpt",
    "gpt-tools": "tools",
    "gpt-midstream": "midstream-error",
    "gpt-context": "error-context",
    "gpt-error-429": "error-429",
}
TOOLS: Any = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@pytest.fixture(scope="module")
def gateway(
    fake_anthropic_server: tuple[FakeAnthropic, FakeServer],
    fake_openai: tuple[FakeOpenAI, FakeServer],
    start_gateway: GatewayFactory,
) -> GatewayProcess:
    config = openai_config(fake_openai[1].url, TRANSLATED, master_key=MASTER_KEY)
    config["providers"]["claude"] = {
        "type": "anthropic",
        "base_url": fake_anthropic_server[1].url,
        "api_key": UPSTREAM_KEY,
        "timeout": 5,
    }
    for public, upstream in NATIVE.items():
        config["models"][public] = {"deployments": [{"provider": "claude", "model": upstream}]}
    return start_gateway(config)


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0, timeout=10) as client:
        yield client


def test_native_pass_through_leaves_the_body_untouched(
    client: anthropic.Anthropic, anthropic_fake: FakeAnthropic
) -> None:
    request: Any = {
        "max_tokens": 300,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello claude"}]}],
        "metadata": {"user_id": "u-1"},
    }
    extra = {"top_k": 5, "x_future_field": {"nested": [1, "two", None]}}
    raw = client.messages.with_raw_response.create(
        model="claude-test",
        **request,
        extra_body=extra,
        extra_headers={"anthropic-beta": "feature-2025-01-01"},
    )
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "echo: hello claude"
    assert message.model == "echo"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 4
    assert raw.headers["x-llm-gateway-provider"] == "claude"
    received = anthropic_fake.last()
    assert received.body == {**request, **extra, "model": "echo"}
    assert received.headers["x-api-key"] == UPSTREAM_KEY
    assert received.headers["anthropic-beta"] == "feature-2025-01-01"


def test_native_stream_helpers(client: anthropic.Anthropic, anthropic_fake: FakeAnthropic) -> None:
    with client.messages.stream(
        model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "one two three"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: one two three"
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 4)
    assert anthropic_fake.last().body["stream"] is True


def test_native_tools_round_trip_streamed(client: anthropic.Anthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    with client.messages.stream(
        model="claude-tools", max_tokens=100, messages=messages, tools=TOOLS
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    call = final.content[-1]
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {"city": "Paris"}
    messages.append({"role": "assistant", "content": final.content})
    messages.append(
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}
    )
    answer = client.messages.create(model="claude-tools", max_tokens=100, messages=messages, tools=TOOLS)
    assert answer.content[0].type == "text" and answer.content[0].text == "The weather is sunny."


def test_native_count_tokens_is_forwarded(client: anthropic.Anthropic, anthropic_fake: FakeAnthropic) -> None:
    counted = client.messages.count_tokens(
        model="claude-test", messages=[{"role": "user", "content": "a b c"}]
    )
    assert counted.input_tokens == 1003
    assert anthropic_fake.last().path == "/v1/messages/count_tokens"
    assert anthropic_fake.last().body["model"] == "echo"


def test_native_errors_are_anthropic_shaped(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(
            model="claude-error-429", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        client.messages.create(
            model="claude-error-529", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert overloaded.value.status_code == 503
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_native_error_event_is_relayed(client: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(
            model="claude-midstream", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        ) as stream,
    ):
        for _ in stream:
            pass
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_translated_create(client: anthropic.Anthropic, fake: FakeOpenAI) -> None:
    message = client.messages.create(
        model="gpt-test",
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello gpt"}],
        stop_sequences=["END"],
        metadata={"user_id": "u-2"},
        extra_body={"temperature": 0.3},
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text == "echo: hello gpt"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 3)
    body = fake.last().body
    assert body["model"] == "upstream-gpt"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello gpt"},
    ]
    assert (body["max_tokens"], body["stop"], body["temperature"], body["user"]) == (64, ["END"], 0.3, "u-2")


def test_translated_stream_helpers(client: anthropic.Anthropic, fake: FakeOpenAI) -> None:
    with client.messages.stream(
        model="gpt-test", max_tokens=64, messages=[{"role": "user", "content": "one two three"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: one two three"
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 4)
    assert fake.last().body["stream_options"] == {"include_usage": True}


def test_translated_tools_round_trip(client: anthropic.Anthropic, fake: FakeOpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.messages.create(
        model="gpt-tools", max_tokens=64, messages=messages, tools=TOOLS, tool_choice={"type": "any"}
    )
    assert first.stop_reason == "tool_use"
    call = first.content[0]
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {"city": "Paris"}
    sent = fake.last().body
    assert sent["tool_choice"] == "required"
    assert sent["tools"][0]["function"]["parameters"] == TOOLS[0]["input_schema"]
    messages.append({"role": "assistant", "content": first.content})
    messages.append(
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "rainy"}]}
    )
    second = client.messages.create(model="gpt-tools", max_tokens=64, messages=messages, tools=TOOLS)
    assert second.content[0].type == "text" and second.content[0].text == "The weather is rainy."
    turns = fake.last().body["messages"]
    assert turns[1]["tool_calls"][0]["id"] == call.id
    assert turns[2] == {"role": "tool", "tool_call_id": call.id, "content": "rainy"}


def test_translated_streamed_tool_use(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="gpt-tools", max_tokens=64, messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert any(event.type == "input_json" for event in events)
    assert final.stop_reason == "tool_use"
    assert len(final.content) == 1
    call = final.content[0]
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {"city": "Paris"}


def test_translated_count_tokens_is_an_estimate(client: anthropic.Anthropic, fake: FakeOpenAI) -> None:
    body: Any = {
        "messages": [{"role": "user", "content": "How many tokens is this sentence?"}],
        "tools": TOOLS,
    }
    raw = client.messages.with_raw_response.count_tokens(model="gpt-test", **body)
    assert raw.parse().input_tokens == estimate_input_tokens(body)
    assert raw.headers["x-llm-gateway-attempts"] == "0"
    assert fake.requests == []


def test_native_error_event_before_message_start_is_an_http_error(client: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.InternalServerError) as caught,
        client.messages.stream(
            model="claude-early-error", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        ) as stream,
    ):
        stream.get_final_message()
    assert caught.value.status_code == 503
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_translated_errors_are_anthropic_shaped(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(
            model="gpt-error-429", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert limited.value.response.headers["retry-after"] == "7"
    with pytest.raises(anthropic.BadRequestError) as context:
        client.messages.create(
            model="gpt-context", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert context.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "This model's maximum context length is 8192 tokens.",
        },
        "request_id": context.value.response.headers["x-request-id"],
    }
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(
            model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_translation_refuses_what_it_cannot_carry(client: anthropic.Anthropic, fake: FakeOpenAI) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="gpt-test",
            max_tokens=10,
            messages=[{"role": "user", "content": "search"}],
            tools=[{"type": "web_search_20250305", "name": "web_search"}],
        )
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "tools.0" in caught.value.body["error"]["message"]  # type: ignore[index]
    assert fake.requests == []


def test_translated_error_mid_stream(client: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(
            model="gpt-midstream", max_tokens=10, messages=[{"role": "user", "content": "x y"}]
        ) as s,
    ):
        for _ in s:
            pass
    assert caught.value.body["type"] == "error"  # type: ignore[index]


def test_auth_errors_are_anthropic_shaped(gateway: GatewayProcess) -> None:
    request: Any = {"model": "gpt-test", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    with (
        anthropic.Anthropic(base_url=gateway.url, api_key="wrong", max_retries=0) as unauthenticated,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        unauthenticated.messages.create(**request)
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with anthropic.Anthropic(base_url=gateway.url, auth_token=MASTER_KEY, max_retries=0) as bearer:
        message = bearer.messages.create(**request)
    assert message.content[0].type == "text"


def test_malformed_body_is_anthropic_shaped(gateway: GatewayProcess) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/messages",
        content=b"{not json",
        headers={"x-api-key": MASTER_KEY, "content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"
    missing = httpx.post(
        f"{gateway.url}/v1/messages",
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-api-key": MASTER_KEY},
        timeout=10,
    )
    assert missing.status_code == 400
    assert "max_tokens" in missing.json()["error"]["message"]


def test_retries_and_the_no_retry_header(client: anthropic.Anthropic, anthropic_fake: FakeAnthropic) -> None:
    request: Any = {"model": "claude-retry", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(**request, extra_headers={"x-llm-gateway-no-retry": "true"})
    assert len(anthropic_fake.requests) == 1
    anthropic_fake.reset()
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(**request)
    assert len(anthropic_fake.requests) > 1  # overload is retryable: the router tried again
