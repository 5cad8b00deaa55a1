"""Chat through the gateway with the official openai SDK against a fake OpenAI upstream."""

from __future__ import annotations

import json

import openai
import orjson

from tests.fakes.openai import FakeOpenAI


def test_non_streaming_chat_round_trip(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "hello gateway"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 5
    assert fake.last().body["model"] == "upstream-gpt"
    assert raw.headers["x-llm-gateway-provider"] == "fake"
    assert raw.headers["x-llm-gateway-model"] == "upstream-gpt"
    assert raw.headers["x-request-id"]


def test_streaming_chat_arrives_in_chunks(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert fake.last().body["stream"] is True


def test_request_id_is_kept(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-request-id": "my-trace-123"},
    )
    assert raw.headers["x-request-id"] == "my-trace-123"


def test_default_model_is_used_when_none_is_named(openai_gateway, fake: FakeOpenAI) -> None:  # type: ignore[no-untyped-def]
    import httpx2

    response = httpx2.post(
        f"{openai_gateway.url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "no model"}]},
        headers={"authorization": "Bearer sk-gateway-test-master"},
    )
    assert response.status_code == 200
    assert fake.last().body["model"] == "upstream-gpt"


def test_unknown_fields_pass_through_untouched(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    extra = {
        "logprobs": True,
        "top_logprobs": 2,
        "seed": 42,
        "n": 1,
        "stop": ["\n\n", "END"],
        "user": "user-7",
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}},
        },
        "temperature": 0.25,
    }
    future = {"x_future_field": {"nested": [1, 2.5, "three", None, True]}, "metadata": {"k": "v"}}
    client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "hi", "name": "bob"}],
        extra_body=future,
        **extra,
    )
    received = fake.last().body
    for key, value in {**extra, **future}.items():
        assert received[key] == value, key
    assert received["messages"] == [{"role": "user", "content": "hi", "name": "bob"}]
    # Byte-level: each extra field's JSON encoding reaches the upstream unchanged.
    raw = fake.last().raw
    for key, value in future.items():
        assert orjson.dumps({key: value})[1:-1] in raw


def test_tools_round_trip(client: openai.OpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(
        model="tools-model", messages=messages, tools=tools, tool_choice="auto"
    )  # type: ignore[arg-type]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"})
    second = client.chat.completions.create(model="tools-model", messages=messages, tools=tools)  # type: ignore[arg-type]
    assert second.choices[0].message.content == "The weather is sunny, 21C."


def test_streamed_tool_call_deltas(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    stream = client.chat.completions.create(
        model="tools-model",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=tools,
        stream=True,  # type: ignore[list-item]
    )
    arguments, name, finish = "", None, None
    for chunk in stream:
        for delta_call in chunk.choices[0].delta.tool_calls or []:
            name = name or (delta_call.function.name if delta_call.function else None)
            arguments += (delta_call.function.arguments or "") if delta_call.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather"
    assert json.loads(arguments) == {"city": "Paris"}
    assert finish == "tool_calls"


def test_models_lists_public_names(client: openai.OpenAI) -> None:
    names = {model.id for model in client.models.list()}
    assert {"gpt-test", "tools-model"} <= names
    assert "upstream-gpt" not in names


def test_stream_chunks_are_flushed_as_they_arrive(client: openai.OpenAI) -> None:
    """The upstream sends a chunk every 50 ms for a minute; the client sees them 50 ms apart."""
    import itertools
    import time

    start = time.monotonic()
    stream = client.chat.completions.create(
        model="drip-model", messages=[{"role": "user", "content": "go"}], stream=True
    )
    arrivals = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - start)
        if len(arrivals) == 5:
            break
    stream.close()
    assert arrivals[0] < 2.0
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(gap > 0.02 for gap in gaps), gaps
