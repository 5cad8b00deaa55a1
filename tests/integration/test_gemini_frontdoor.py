"""The Gemini front door through a real gateway process with the official `google-genai` SDK,
in front of an OpenAI-compatible fake, the Anthropic fake and the Gemini fake (each reached
through the chat translation both ways)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from google import genai
from google.genai import errors, types

from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory
from tests.fakes import gemini as gemini_fakes
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

ECHO = ["gpt-echo", "claude-echo", "gemini-echo"]
TOOLS = ["gpt-tools", "claude-tools", "gemini-tools"]
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Current weather in a city",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}, required=["city"]
    ),
)


@pytest.fixture(scope="module")
def gateway(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    fake_anthropic_server: tuple[FakeAnthropic, FakeServer],
    fake_gemini_server: tuple[FakeGemini, FakeServer],
    start_gateway: GatewayFactory,
) -> GatewayProcess:
    providers = {
        "compat": {"type": "openai", "base_url": f"{fake_openai[1].url}/v1", "api_key": UPSTREAM_KEY},
        "claude": {"type": "anthropic", "base_url": fake_anthropic_server[1].url, "api_key": UPSTREAM_KEY},
        "gemini": {
            "type": "gemini",
            "base_url": f"{fake_gemini_server[1].url}/v1beta",
            "api_key": gemini_fakes.API_KEY,
        },
    }
    models: dict[str, Any] = {
        "gpt-echo": {"deployments": [{"provider": "compat", "model": "upstream-gpt"}]},
        "gpt-tools": {"deployments": [{"provider": "compat", "model": "tools"}]},
        "gpt-cut": {"deployments": [{"provider": "compat", "model": "midstream-error"}]},
        "claude-echo": {"deployments": [{"provider": "claude", "model": "echo"}]},
        "claude-tools": {"deployments": [{"provider": "claude", "model": "tools"}]},
        "gemini-echo": {"deployments": [{"provider": "gemini", "model": "echo"}]},
        "gemini-tools": {"deployments": [{"provider": "gemini", "model": "tools"}]},
        "embedder": {"deployments": [{"provider": "compat", "model": "text-embedding-3-small"}]},
    }
    return start_gateway({"providers": providers, "models": models, "master_key": MASTER_KEY})


def sdk(gateway: GatewayProcess, key: str = MASTER_KEY) -> genai.Client:
    options = types.HttpOptions(base_url=gateway.url, timeout=10_000, retry_options=None)
    return genai.Client(api_key=key, http_options=options)


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[genai.Client]:
    with sdk(gateway) as gemini:
        yield gemini


@pytest.fixture
def upstream(fake_openai: tuple[FakeOpenAI, FakeServer]) -> FakeOpenAI:
    fake_openai[0].reset()
    return fake_openai[0]


@pytest.mark.parametrize("model", ECHO)
def test_generate_content(client: genai.Client, model: str) -> None:
    config = types.GenerateContentConfig(
        system_instruction="Be brief.", temperature=0.2, max_output_tokens=50
    )
    response = client.models.generate_content(model=model, contents="hello there", config=config)
    assert response.text is not None and "hello there" in response.text
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert response.model_version and response.response_id is not None


def test_the_translated_chat_request(client: genai.Client, upstream: FakeOpenAI) -> None:
    config = types.GenerateContentConfig(
        system_instruction="Be brief.",
        temperature=0.2,
        top_p=0.9,
        max_output_tokens=50,
        stop_sequences=["END"],
        safety_settings=[
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                threshold=types.HarmBlockThreshold.BLOCK_NONE,
            )
        ],
    )
    client.models.generate_content(model="gpt-echo", contents="hello there", config=config)
    body = upstream.last().body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1] == {"role": "user", "content": [{"type": "text", "text": "hello there"}]}
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["stop"]) == (0.2, 0.9, 50, ["END"])


@pytest.mark.parametrize("model", ECHO)
def test_generate_content_stream(client: genai.Client, model: str) -> None:
    chunks = list(client.models.generate_content_stream(model=model, contents="hello there friend"))
    text = "".join(chunk.text or "" for chunk in chunks)
    assert "hello there friend" in text
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.total_token_count


@pytest.mark.parametrize("model", TOOLS)
@pytest.mark.parametrize("stream", [False, True])
def test_a_function_call_round_trip(client: genai.Client, model: str, stream: bool) -> None:
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    contents: list[Any] = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])]
    if stream:
        chunks = list(client.models.generate_content_stream(model=model, contents=contents, config=config))
        calls = [call for chunk in chunks for call in chunk.function_calls or ()]
        turn = types.Content(role="model", parts=[types.Part(function_call=call) for call in calls])
    else:
        first = client.models.generate_content(model=model, contents=contents, config=config)
        calls = list(first.function_calls or ())
        assert first.candidates and first.candidates[0].content
        turn = first.candidates[0].content
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris"})]
    result = types.Part.from_function_response(name="get_weather", response={"forecast": "sunny"})
    result.function_response.id = calls[0].id  # type: ignore[union-attr]
    contents += [turn, types.Content(role="user", parts=[result])]
    answer = client.models.generate_content(model=model, contents=contents, config=config)
    assert answer.text is not None and "sunny" in answer.text


def test_forced_function_calling(client: genai.Client, upstream: FakeOpenAI) -> None:
    tool_config = types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_weather"]
        )
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])], tool_config=tool_config
    )
    client.models.generate_content(model="gpt-tools", contents="Weather?", config=config)
    body = upstream.last().body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["tools"][0]["function"]["parameters"]["properties"]["city"] == {"type": "string"}


def test_json_schema_output(client: genai.Client, upstream: FakeOpenAI) -> None:
    schema = types.Schema(type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)})
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema)
    client.models.generate_content(model="gpt-echo", contents="a city", config=config)
    format_ = upstream.last().body["response_format"]
    assert format_["type"] == "json_schema"
    assert format_["json_schema"]["schema"] == {"type": "object", "properties": {"city": {"type": "string"}}}


def test_count_tokens(client: genai.Client) -> None:
    short = client.models.count_tokens(model="claude-echo", contents="hello")
    long = client.models.count_tokens(model="claude-echo", contents="hello " * 50)
    assert short.total_tokens and long.total_tokens and long.total_tokens > short.total_tokens + 40


def test_embed_content(client: genai.Client, upstream: FakeOpenAI) -> None:
    result = client.models.embed_content(
        model="embedder",
        contents=["first text", "second text"],
        config=types.EmbedContentConfig(output_dimensionality=3),
    )
    assert result.embeddings and [e.values for e in result.embeddings] == [[0.1, 0.2, 0.0], [0.1, 0.2, 1.0]]
    body = upstream.last().body
    assert (body["input"], body["dimensions"]) == (["first text", "second text"], 3)


def test_embed_content_single_route(gateway: GatewayProcess) -> None:
    body = {"content": {"parts": [{"text": "one"}]}}
    response = httpx.post(
        f"{gateway.url}/v1beta/models/embedder:embedContent",
        json=body,
        headers={"x-goog-api-key": MASTER_KEY},
    )
    assert response.status_code == 200
    assert response.json() == {"embedding": {"values": [0.1, 0.2, 0.0]}}


def test_models_list_and_get(client: genai.Client) -> None:
    names = [model.name for model in client.models.list()]
    assert "models/gpt-echo" in names and "models/embedder" in names
    model = client.models.get(model="claude-echo")
    assert model.name == "models/claude-echo"
    assert model.supported_actions and "generateContent" in model.supported_actions
    embedder = client.models.get(model="embedder")
    assert embedder.supported_actions and "embedContent" in embedder.supported_actions


def test_an_unknown_model_is_a_404(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model="no-such-model", contents="hi")
    assert raised.value.code == 404 and raised.value.status == "NOT_FOUND"
    with pytest.raises(errors.ClientError) as raised:
        client.models.get(model="no-such-model")
    assert raised.value.code == 404 and raised.value.status == "NOT_FOUND"


def test_a_bad_key_is_refused(gateway: GatewayProcess) -> None:
    with sdk(gateway, key="not-the-key") as gemini, pytest.raises(errors.ClientError) as raised:
        gemini.models.generate_content(model="gpt-echo", contents="hi")
    assert raised.value.code == 401 and raised.value.status == "UNAUTHENTICATED"
    response = httpx.get(f"{gateway.url}/v1beta/models")
    assert response.status_code == 401 and response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_the_key_as_a_query_parameter(gateway: GatewayProcess) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    url = f"{gateway.url}/v1beta/models/gpt-echo:generateContent"
    response = httpx.post(url, params={"key": MASTER_KEY}, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["candidates"][0]["content"]["parts"] == [{"text": "echo: hello"}]
    listed = httpx.get(f"{gateway.url}/v1beta/models", params={"key": MASTER_KEY})
    assert listed.status_code == 200 and listed.json()["models"]


def test_the_json_array_stream_form(gateway: GatewayProcess) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    url = f"{gateway.url}/v1beta/models/gpt-echo:streamGenerateContent"
    response = httpx.post(url, json=body, headers={"x-goog-api-key": MASTER_KEY})
    assert response.status_code == 200
    [only] = response.json()
    assert only["candidates"][0]["finishReason"] == "STOP"


def test_an_unsupported_field_is_a_400(client: genai.Client) -> None:
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model="gpt-echo", contents="hi", config=config)
    assert raised.value.code == 400 and raised.value.status == "INVALID_ARGUMENT"
    assert "googleSearch" in str(raised.value.message)


def test_a_failure_mid_stream_is_an_error_event(client: genai.Client) -> None:
    with pytest.raises(errors.APIError) as raised:
        list(client.models.generate_content_stream(model="gpt-cut", contents="hello"))
    assert raised.value.code and raised.value.code >= 500


def test_an_unknown_method_is_gemini_shaped(gateway: GatewayProcess) -> None:
    response = httpx.post(
        f"{gateway.url}/v1beta/models/gpt-echo:predict", json={}, headers={"x-goog-api-key": MASTER_KEY}
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["status"] == "NOT_FOUND" and "not an endpoint" in error["message"]
    assert json.dumps(error).count("predict") >= 1


def test_a_virtual_key_is_governed_like_on_any_door(gateway: GatewayProcess) -> None:
    """A virtual key's allowed models and limits bind Gemini requests too (the pipeline's hooks)."""
    created = httpx.post(
        f"{gateway.url}/admin/keys",
        json={"name": "gemini-app", "models": ["gpt-echo"], "rpm": 2},
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    with sdk(gateway, key=created.json()["key"]) as gemini:
        assert [model.name for model in gemini.models.list()] == ["models/gpt-echo"]
        assert gemini.models.generate_content(model="gpt-echo", contents="hi").text == "echo: hi"
        with pytest.raises(errors.ClientError) as denied:
            gemini.models.generate_content(model="claude-echo", contents="hi")
        assert denied.value.code == 403 and denied.value.status == "PERMISSION_DENIED"
        gemini.models.generate_content(model="gpt-echo", contents="hi")
        with pytest.raises(errors.ClientError) as limited:
            gemini.models.generate_content(model="gpt-echo", contents="hi")
        assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"
