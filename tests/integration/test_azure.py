"""Azure OpenAI through the gateway: the official openai SDK in front, the fake Azure resource
(tests/fakes/azure.py) behind, and assertions on the route, api-version and credential Azure got."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.azure import AD_TOKEN, API_KEY, FakeAzure
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

HI: Any = [{"role": "user", "content": "hello azure"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
DEPLOYMENTS = [
    "echo",
    "tools",
    "content-filter",
    "filtered-output",
    "midstream-filter",
    "missing-deployment",
    "error-400",
    "error-429",
    "error-500",
    "error-context",
    "text-embedding-3-small",
]


@pytest.fixture(scope="module")
def azure_gateway(
    fake_azure_server: tuple[FakeAzure, FakeServer], start_gateway: GatewayFactory
) -> GatewayProcess:
    _, server = fake_azure_server
    base = {"type": "azure", "endpoint": server.url, "api_key": API_KEY, "timeout": 5}
    providers = {
        "azure": base,
        "azure-entra": {
            "type": "azure",
            "endpoint": server.url,
            "azure_ad_token": AD_TOKEN,
            "api_version": "2025-04-01-preview",
        },
        "azure-v1": {**base, "endpoint": f"{server.url}/openai/", "route": "v1"},
        "azure-fixed": {**base, "deployment": "echo"},
        "azure-bad-key": {**base, "api_key": "not-the-azure-key-000"},
        "azure-old-version": {**base, "api_version": "2023-03-15-preview"},
    }
    models: dict[str, Any] = {
        f"az-{name}": {"deployments": [{"provider": "azure", "model": name}]} for name in DEPLOYMENTS
    }
    models["az-entra"] = {"deployments": [{"provider": "azure-entra", "model": "echo"}]}
    models["az-v1"] = {"deployments": [{"provider": "azure-v1", "model": "tools"}]}
    models["az-v1-embed"] = {"deployments": [{"provider": "azure-v1", "model": "text-embedding-3-small"}]}
    models["az-fixed"] = {"deployments": [{"provider": "azure-fixed", "model": "some-model-name"}]}
    models["az-bad-key"] = {"deployments": [{"provider": "azure-bad-key", "model": "echo"}]}
    models["az-old-version"] = {"deployments": [{"provider": "azure-old-version", "model": "echo"}]}
    # A second public name per failing model: a 401/403 opens the deployment's circuit at once.
    models.update({f"{name}-stream": group for name, group in list(models.items()) if name != "az-echo"})
    return start_gateway({"providers": providers, "models": models, "master_key": MASTER_KEY})


@pytest.fixture
def az(azure_gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{azure_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10)


def test_plain_text_uses_the_deployment_route_api_version_and_key(
    az: openai.OpenAI, azure_fake: FakeAzure
) -> None:
    raw = az.chat.completions.with_raw_response.create(model="az-echo", messages=HI)
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello azure"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 5
    assert completion.model == "gpt-4o-2024-08-06"
    received = azure_fake.last()
    assert received.path == "/openai/deployments/echo/chat/completions?api-version=2024-10-21"
    assert received.headers["api-key"] == API_KEY
    assert "authorization" not in {k.lower() for k in received.headers}
    assert raw.headers["x-llm-gateway-provider"] == "azure"


def test_entra_token_is_a_bearer_and_api_version_is_configurable(
    az: openai.OpenAI, azure_fake: FakeAzure
) -> None:
    completion = az.chat.completions.create(model="az-entra", messages=HI)
    assert completion.choices[0].message.content == "echo: hello azure"
    received = azure_fake.last()
    assert received.path == "/openai/deployments/echo/chat/completions?api-version=2025-04-01-preview"
    assert received.headers["Authorization"] == f"Bearer {AD_TOKEN}"
    assert "api-key" not in {k.lower() for k in received.headers}


def test_v1_route_puts_the_deployment_in_the_body(az: openai.OpenAI, azure_fake: FakeAzure) -> None:
    first = az.chat.completions.create(model="az-v1", messages=HI, tools=[WEATHER_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    received = azure_fake.last()
    assert received.path == "/openai/v1/chat/completions"
    assert received.body["model"] == "tools"


def test_a_fixed_deployment_overrides_the_model(az: openai.OpenAI, azure_fake: FakeAzure) -> None:
    az.chat.completions.create(model="az-fixed", messages=HI)
    assert azure_fake.last().path.startswith("/openai/deployments/echo/chat/completions?")
    assert azure_fake.last().body["model"] == "echo"


def test_multi_turn_system_and_image_pass_through_unchanged(az: openai.OpenAI, azure_fake: FakeAzure) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}
    messages: Any = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]},
    ]
    completion = az.chat.completions.create(model="az-echo", messages=messages, temperature=0.2, seed=7)
    assert completion.choices[0].message.content == "echo: what is this?"
    body = azure_fake.last().body
    assert body["messages"] == messages
    assert (body["temperature"], body["seed"]) == (0.2, 7)


def test_tools_full_round_trip(az: openai.OpenAI, azure_fake: FakeAzure) -> None:
    messages: Any = [{"role": "user", "content": "Weather in Paris?"}]
    first = az.chat.completions.create(
        model="az-tools", messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"})
    second = az.chat.completions.create(model="az-tools", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "The weather is sunny, 21C."
    assert azure_fake.last().body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "sunny, 21C",
    }


def test_streaming_drops_the_prompt_filter_chunk_and_keeps_usage(az: openai.OpenAI) -> None:
    stream = az.chat.completions.create(
        model="az-echo", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(c.choices or c.usage for c in chunks), "no chunk without choices or usage reaches the client"
    assert all(c.model == "gpt-4o-2024-08-06" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hello azure"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_streamed_tool_call_deltas(az: openai.OpenAI) -> None:
    stream = az.chat.completions.create(model="az-tools", messages=HI, tools=[WEATHER_TOOL], stream=True)
    name, arguments, finish = None, "", None
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            name = name or (delta.function.name if delta.function else None)
            arguments += (delta.function.arguments or "") if delta.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert (name, json.loads(arguments), finish) == ("get_weather", {"city": "Paris"}, "tool_calls")


def test_filtered_prompt_is_a_content_policy_violation(az: openai.OpenAI) -> None:
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            az.chat.completions.create(model="az-content-filter", messages=HI, stream=stream)
        assert caught.value.code == "content_policy_violation"
        assert "content management policy" in caught.value.message


def test_filtered_output_keeps_finish_reason_content_filter(az: openai.OpenAI) -> None:
    completion = az.chat.completions.create(model="az-filtered-output", messages=HI)
    assert completion.choices[0].finish_reason == "content_filter"
    stream = az.chat.completions.create(model="az-filtered-output", messages=HI, stream=True)
    assert [c.choices[0].finish_reason for c in stream if c.choices and c.choices[0].finish_reason] == [
        "content_filter"
    ]


def test_content_filter_mid_stream_is_an_error_event(az: openai.OpenAI) -> None:
    stream = az.chat.completions.create(model="az-midstream-filter", messages=HI, stream=True)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert received
    assert caught.value.code == "content_policy_violation"


@pytest.mark.parametrize(
    ("model", "error", "status", "code"),
    [
        ("az-error-context", openai.BadRequestError, 400, "context_length_exceeded"),
        ("az-error-400", openai.BadRequestError, 400, "fake_400"),
        ("az-error-429", openai.RateLimitError, 429, "fake_429"),
        ("az-error-500", openai.APIStatusError, 502, "upstream_unavailable"),
        ("az-missing-deployment", openai.NotFoundError, 404, "DeploymentNotFound"),
        ("az-bad-key", openai.AuthenticationError, 401, "401"),
        ("az-old-version", openai.BadRequestError, 400, "BadRequest"),
    ],
)
def test_errors_map_to_openai_errors(
    az: openai.OpenAI, model: str, error: type[openai.APIStatusError], status: int, code: str
) -> None:
    for stream in (False, True):
        name = f"{model}-stream" if stream else model  # each has its own circuit breaker
        with pytest.raises(error) as caught:
            az.chat.completions.create(model=name, messages=HI, stream=stream)
        assert (caught.value.status_code, caught.value.code) == (status, code)
        assert API_KEY not in str(caught.value.body)
        if status == 429:
            assert caught.value.response.headers["retry-after"] == "7"


def test_embeddings_float_and_base64(az: openai.OpenAI, azure_fake: FakeAzure) -> None:
    floats = az.embeddings.create(
        model="az-text-embedding-3-small", input=["a", "b"], encoding_format="float"
    )
    assert [d.embedding for d in floats.data] == [[0.5, -0.5, 0.0], [0.5, -0.5, 1.0]]
    assert floats.usage.prompt_tokens == 4
    assert (
        azure_fake.last().path
        == "/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21"
    )
    packed = az.embeddings.create(model="az-text-embedding-3-small", input="a")  # the SDK asks for base64
    assert azure_fake.last().body["encoding_format"] == "base64"
    assert packed.data[0].embedding == [0.5, -0.5, 0.0]
    az.embeddings.create(model="az-v1-embed", input="a", dimensions=3)
    assert azure_fake.last().path == "/openai/v1/embeddings"
    assert (azure_fake.last().body["model"], azure_fake.last().body["dimensions"]) == (
        "text-embedding-3-small",
        3,
    )
