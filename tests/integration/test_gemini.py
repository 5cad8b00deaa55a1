"""Chat with Gemini models through the gateway: the official openai SDK in front, the fake
Google AI Studio (tests/fakes/gemini.py) behind, and assertions on what Google received."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.gemini import API_KEY, THOUGHT_SIGNATURE, FakeGemini
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
BEHAVIOURS = [
    "echo",
    "tools",
    "parallel",
    "thinking",
    "max-tokens",
    "safety",
    "blocked",
    "cut",
    "midstream-error",
    "error-400",
    "error-403",
    "error-404",
    "error-429",
    "error-500",
    "error-503",
    "error-context",
]


@pytest.fixture(scope="module")
def gemini_gateway(
    fake_gemini_server: tuple[FakeGemini, FakeServer], start_gateway: GatewayFactory
) -> GatewayProcess:
    _, server = fake_gemini_server
    provider = {"type": "gemini", "base_url": f"{server.url}/v1beta", "api_key": API_KEY, "timeout": 5}
    models = {f"g-{name}": {"deployments": [{"provider": "google", "model": name}]} for name in BEHAVIOURS}
    models["g-bad-key"] = {"deployments": [{"provider": "google-bad-key", "model": "echo"}]}
    # Streamed error cases use their own deployments, so no health state carries over.
    models.update(
        {f"stream-{name}": group for name, group in models.items() if "error" in name or "bad" in name}
    )
    config = {
        "providers": {"google": provider, "google-bad-key": {**provider, "api_key": "not-the-key-0000"}},
        "models": models,
        "master_key": MASTER_KEY,
    }
    return start_gateway(config)


@pytest.fixture
def gclient(gemini_gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{gemini_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10
    ) as client:
        yield client


def test_plain_text(gclient: openai.OpenAI, gemini_fake: FakeGemini) -> None:
    raw = gclient.chat.completions.with_raw_response.create(
        model="g-echo", messages=[{"role": "user", "content": "hello gateway"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello gateway"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2, 3)
    assert completion.usage.total_tokens == 5
    assert completion.model == "gemini-2.5-flash"
    received = gemini_fake.last()
    assert (received.model, received.method) == ("echo", "generateContent")
    assert received.headers["x-goog-api-key"] == API_KEY
    assert received.body == {"contents": [{"role": "user", "parts": [{"text": "hello gateway"}]}]}
    assert raw.headers["x-llm-gateway-provider"] == "google"


def test_multi_turn_with_system_prompt_and_sampling(gclient: openai.OpenAI, gemini_fake: FakeGemini) -> None:
    completion = gclient.chat.completions.create(
        model="g-echo",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "echo: first"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ],
        temperature=0.3,
        top_p=0.9,
        max_completion_tokens=50,
        stop=["END"],
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        reasoning_effort="low",
    )
    assert completion.choices[0].message.content == "echo: second"
    body = gemini_fake.last().body
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][1]["parts"] == [{"text": "echo: first"}]
    assert body["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.9,
        "maxOutputTokens": 50,
        "stopSequences": ["END"],
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
        "thinkingConfig": {"thinkingBudget": 1024},
    }


def test_image_input_is_sent_inline_or_by_uri(gclient: openai.OpenAI, gemini_fake: FakeGemini) -> None:
    content: Any = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg?size=large"}},
    ]
    completion = gclient.chat.completions.create(
        model="g-echo", messages=[{"role": "user", "content": content}]
    )
    assert completion.choices[0].message.content == "echo: what is this"
    parts = gemini_fake.last().body["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert parts[2] == {
        "fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg?size=large"}
    }


def test_tools_full_round_trip(gclient: openai.OpenAI, gemini_fake: FakeGemini) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = gclient.chat.completions.create(
        model="g-tools", messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    assert first.choices[0].finish_reason == "tool_calls"
    calls = first.choices[0].message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id.startswith("call_")
    sent = gemini_fake.last().body
    declaration = sent["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "get_weather"
    assert declaration["parametersJsonSchema"] == WEATHER_TOOL["function"]["parameters"]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}

    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"})
    second = gclient.chat.completions.create(model="g-tools", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "The weather is sunny, 21C."
    assert second.choices[0].finish_reason == "stop"
    history = gemini_fake.last().body["contents"]
    assert history[1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": THOUGHT_SIGNATURE,
            }
        ],
    }
    assert history[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "sunny, 21C"}}}],
    }


def test_parallel_calls_and_their_results(gclient: openai.OpenAI, gemini_fake: FakeGemini) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris and London?"}]
    first = gclient.chat.completions.create(model="g-parallel", messages=messages, tools=[WEATHER_TOOL])
    calls = first.choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "London"]
    assert len({c.id for c in calls}) == 2
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [
        {"role": "tool", "tool_call_id": c.id, "content": f'{{"temp": {i}}}'} for i, c in enumerate(calls)
    ]
    second = gclient.chat.completions.create(model="g-parallel", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == 'The weather is {"temp":1}.'
    results = gemini_fake.last().body["contents"][2]["parts"]
    assert [p["functionResponse"]["response"] for p in results] == [{"temp": 0}, {"temp": 1}]


def test_parallel_tool_calls_false_keeps_the_first_call(gclient: openai.OpenAI) -> None:
    completion = gclient.chat.completions.create(
        model="g-parallel",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    calls = completion.choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris"}]


def test_forced_tool_choice(gclient: openai.OpenAI, gemini_fake: FakeGemini) -> None:
    gclient.chat.completions.create(
        model="g-tools",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    config = gemini_fake.last().body["toolConfig"]["functionCallingConfig"]
    assert config == {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}


def test_streaming_text_with_usage(gclient: openai.OpenAI, gemini_fake: FakeGemini) -> None:
    stream = gclient.chat.completions.create(
        model="g-echo",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert len({c.id for c in chunks}) == 1
    received = gemini_fake.last()
    assert (received.method, received.query) == ("streamGenerateContent", {"alt": "sse"})


def test_streaming_tool_call_chunks_and_round_trip(gclient: openai.OpenAI, gemini_fake: FakeGemini) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather?"}]
    stream = gclient.chat.completions.create(
        model="g-tools", messages=messages, tools=[WEATHER_TOOL], stream=True
    )
    call_id, name, arguments, finish = None, None, "", None
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            assert delta.index == 0
            call_id = delta.id or call_id
            name = (delta.function.name if delta.function else None) or name
            arguments += (delta.function.arguments or "") if delta.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather" and json.loads(arguments) == {"city": "Paris"}
    assert finish == "tool_calls"
    assert call_id is not None
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": "rainy"},
    ]
    answer = gclient.chat.completions.create(
        model="g-tools", messages=messages, tools=[WEATHER_TOOL], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in answer if c.choices) == "The weather is rainy."
    assert gemini_fake.last().body["contents"][1]["parts"][0]["thoughtSignature"] == THOUGHT_SIGNATURE


def test_thinking_and_cached_token_usage(gclient: openai.OpenAI) -> None:
    completion = gclient.chat.completions.create(
        model="g-thinking", messages=[{"role": "user", "content": "hi"}]
    )
    message = completion.choices[0].message
    assert message.content == "echo: hi"
    assert getattr(message, "reasoning_content", None) == "Let me think."
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 5
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 2
    assert usage.completion_tokens == 2 + 5
    assert usage.total_tokens == 1 + 2 + 5


def test_max_tokens_finishes_with_length(gclient: openai.OpenAI) -> None:
    completion = gclient.chat.completions.create(
        model="g-max-tokens", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].finish_reason == "length"


@pytest.mark.parametrize("model", ["g-safety", "g-blocked"])
def test_safety_blocks_are_content_filter_answers(gclient: openai.OpenAI, model: str) -> None:
    completion = gclient.chat.completions.create(model=model, messages=[{"role": "user", "content": "bad"}])
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content == ""
    chunks = list(
        gclient.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "bad"}], stream=True
        )
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["content_filter"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ""


ERRORS = [
    ("g-error-400", openai.BadRequestError, 400, "invalid_argument"),
    ("g-error-context", openai.BadRequestError, 400, "context_length_exceeded"),
    ("g-bad-key", openai.AuthenticationError, 401, "invalid_api_key"),
    ("g-error-403", openai.PermissionDeniedError, 403, "permission_denied"),
    ("g-error-404", openai.NotFoundError, 404, "not_found"),
    ("g-error-429", openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("g-error-500", openai.InternalServerError, 502, "upstream_unavailable"),
    ("g-error-503", openai.InternalServerError, 503, "upstream_overloaded"),
]


@pytest.mark.parametrize(("model", "kind", "status", "code"), ERRORS)
@pytest.mark.parametrize("stream", [False, True])
def test_google_errors_map_to_openai_errors(
    gclient: openai.OpenAI,
    model: str,
    kind: type[openai.APIStatusError],
    status: int,
    code: str,
    stream: bool,
) -> None:
    with pytest.raises(kind) as caught:
        result: Any = gclient.chat.completions.create(
            model=f"stream-{model}" if stream else model,
            messages=[{"role": "user", "content": "hi"}],
            stream=stream,
        )
        if stream:
            list(result)
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict) and caught.value.body.get("code") == code
    assert API_KEY not in caught.value.message
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize("model", ["g-cut", "g-midstream-error"])
def test_stream_failing_after_the_first_chunk_ends_with_an_error_event(
    gclient: openai.OpenAI, model: str
) -> None:
    stream = gclient.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received) == "echo: "


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"stop": 5}, "stop"),
    ],
)
def test_untranslatable_fields_are_400s_naming_the_field(
    gclient: openai.OpenAI, gemini_fake: FakeGemini, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gclient.chat.completions.create(
            model="g-echo", messages=[{"role": "user", "content": "hi"}], extra_body=extra
        )
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == param
    assert gemini_fake.requests == []


def test_unknown_tool_call_id_is_a_400(gclient: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gclient.chat.completions.create(
            model="g-echo",
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "nope", "content": "x"},
            ],
        )
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "messages[1].tool_call_id"
