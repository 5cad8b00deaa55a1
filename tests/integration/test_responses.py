"""The Responses API through a real gateway process with the official openai SDK: native
pass-through to an upstream that speaks it, and translation onto chat for an
OpenAI-compatible server, Anthropic and Gemini (each a loopback fake in its wire format)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory
from tests.fakes import gemini as gemini_fakes
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.responses import FakeResponses
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CITY_FORMAT = {
    "type": "json_schema",
    "name": "city",
    "schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
NATIVE = {"responses_api": "native"}
ECHO = ["native-echo", "compat-echo", "claude-echo", "gemini-echo"]
TOOLS = ["native-tools", "compat-tools", "claude-tools", "gemini-tools"]


@pytest.fixture(scope="module")
def gateway(
    fake_responses_server: tuple[FakeResponses, FakeServer],
    fake_anthropic_server: tuple[FakeAnthropic, FakeServer],
    fake_gemini_server: tuple[FakeGemini, FakeServer],
    start_gateway: GatewayFactory,
) -> GatewayProcess:
    openai_url = f"{fake_responses_server[1].url}/v1"
    providers = {
        "native": {
            "type": "openai",
            "base_url": openai_url,
            "api_key": UPSTREAM_KEY,
            "responses_api": "native",
        },
        "compat": {"type": "openai", "base_url": openai_url, "api_key": UPSTREAM_KEY},
        "claude": {"type": "anthropic", "base_url": fake_anthropic_server[1].url, "api_key": UPSTREAM_KEY},
        "gemini": {
            "type": "gemini",
            "base_url": f"{fake_gemini_server[1].url}/v1beta",
            "api_key": gemini_fakes.API_KEY,
        },
    }
    upstream = {"native": "upstream-gpt", "compat": "upstream-gpt", "claude": "echo", "gemini": "echo"}
    models: dict[str, Any] = {}
    for provider, echo in upstream.items():
        for name, model in (("echo", echo), ("tools", "tools"), ("json", "json"), ("cut", "midstream-error")):
            models[f"{provider}-{name}"] = {"deployments": [{"provider": provider, "model": model}]}
    return start_gateway({"providers": providers, "models": models, "master_key": MASTER_KEY})


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


@pytest.fixture
def upstream(fake_responses_server: tuple[FakeResponses, FakeServer]) -> FakeResponses:
    fake = fake_responses_server[0]
    fake.reset()
    return fake


@pytest.mark.parametrize("model", ECHO)
def test_a_text_answer(client: openai.OpenAI, model: str) -> None:
    response = client.responses.create(model=model, input="hello there", instructions="Be brief.")
    assert response.status == "completed"
    assert "hello there" in response.output_text
    assert response.usage is not None and response.usage.input_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


@pytest.mark.parametrize("model", ECHO)
def test_a_streamed_answer(client: openai.OpenAI, model: str) -> None:
    events = list(client.responses.create(model=model, input="hello there", stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    for kind in ("response.output_item.added", "response.content_part.added", "response.output_text.done"):
        assert kind in kinds
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    completed = events[-1]
    assert completed.type == "response.completed"
    assert deltas == completed.response.output_text and "hello there" in deltas
    assert completed.response.usage is not None


@pytest.mark.parametrize("model", ["native-echo", "compat-echo", "claude-echo"])
def test_the_sdk_stream_helper_assembles_the_answer(client: openai.OpenAI, model: str) -> None:
    with client.responses.stream(model=model, input="hello there") as stream:
        final = stream.get_final_response()
    assert "hello there" in final.output_text


@pytest.mark.parametrize("model", TOOLS)
@pytest.mark.parametrize("streamed", [False, True])
def test_a_tool_call_then_its_output_over_turns(client: openai.OpenAI, model: str, streamed: bool) -> None:
    question = "What is the weather in Paris?"
    if streamed:
        events = list(client.responses.create(model=model, input=question, tools=[WEATHER], stream=True))
        kinds = [event.type for event in events]
        assert "response.function_call_arguments.done" in kinds
        first = events[-1].response  # type: ignore[union-attr]
    else:
        first = client.responses.create(model=model, input=question, tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    result = {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}
    second = client.responses.create(
        model=model, previous_response_id=first.id, input=[result], tools=[WEATHER]
    )
    assert "sunny" in second.output_text
    assert second.previous_response_id == first.id


@pytest.mark.parametrize("model", ["compat-tools", "claude-tools", "gemini-tools"])
def test_a_stateless_tool_turn_sends_the_whole_conversation(client: openai.OpenAI, model: str) -> None:
    """What Codex does: `store: false`, and every turn carries the items so far."""
    question = {"role": "user", "content": "What is the weather in Paris?"}
    first = client.responses.create(model=model, input=[question], tools=[WEATHER], store=False)
    call = next(item for item in first.output if item.type == "function_call")
    history = [question, call.model_dump(exclude_none=True)]
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "rainy"}
    second = client.responses.create(model=model, input=[*history, result], tools=[WEATHER], store=False)
    assert "rainy" in second.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_previous_response_id_rebuilds_the_conversation_when_translated(
    client: openai.OpenAI, upstream: FakeResponses
) -> None:
    first = client.responses.create(model="compat-echo", input="my name is Ada")
    client.responses.create(model="compat-echo", previous_response_id=first.id, input="what is my name?")
    messages = upstream.bodies("/v1/chat/completions")[-1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "my name is Ada"
    assert messages[1]["content"] == "echo: my name is Ada"


def test_previous_response_id_passes_through_to_the_upstream_that_stored_it(
    client: openai.OpenAI, upstream: FakeResponses
) -> None:
    first = client.responses.create(model="native-echo", input="my name is Ada")
    assert first.id.startswith("resp_upstream_")
    second = client.responses.create(model="native-echo", previous_response_id=first.id, input="again")
    sent = upstream.bodies("/v1/responses")[-1]
    assert sent["previous_response_id"] == first.id and sent["input"] == "again"
    assert second.output_text == "echo: again"


def test_a_native_conversation_continues_on_a_translated_deployment(
    client: openai.OpenAI, upstream: FakeResponses
) -> None:
    first = client.responses.create(model="native-echo", input="my name is Ada")
    client.responses.create(model="claude-echo", previous_response_id=first.id, input="who am I?")
    client.responses.create(model="compat-echo", previous_response_id=first.id, input="who am I?")
    messages = upstream.bodies("/v1/chat/completions")[-1]["messages"]
    assert [m["content"] for m in messages] == ["my name is Ada", "echo: my name is Ada", "who am I?"]


@pytest.mark.parametrize("model", ["native-json", "compat-json"])
def test_structured_output(client: openai.OpenAI, upstream: FakeResponses, model: str) -> None:
    response = client.responses.create(
        model=model, input="Where is the Eiffel tower?", text={"format": CITY_FORMAT}
    )
    assert json.loads(response.output_text) == {"city": "Paris"}
    if model == "compat-json":
        sent = upstream.bodies("/v1/chat/completions")[-1]["response_format"]
        assert sent == {
            "type": "json_schema",
            "json_schema": {k: v for k, v in CITY_FORMAT.items() if k != "type"},
        }


def test_retrieve_and_delete(client: openai.OpenAI) -> None:
    created = client.responses.create(model="compat-echo", input="keep me")
    fetched = client.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == created.output_text
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as raised:
        client.responses.retrieve(created.id)
    assert raised.value.status_code == 404
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_an_unknown_or_foreign_id_is_a_404(client: openai.OpenAI, gateway: GatewayProcess) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.responses.create(model="compat-echo", previous_response_id="resp_not_ours", input="hi")
    assert raised.value.body["param"] == "previous_response_id"  # type: ignore[index]
    created = client.responses.create(model="compat-echo", input="mine")
    stranger = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="wrong-key", max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError):
        stranger.responses.retrieve(created.id)


@pytest.mark.parametrize("model", ["compat-echo", "claude-echo", "gemini-echo"])
def test_a_builtin_tool_without_a_native_deployment_is_a_400_naming_it(
    client: openai.OpenAI, model: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=model, input="news?", tools=[{"type": "web_search"}])
    assert "'web_search'" in raised.value.message


def test_a_builtin_tool_goes_to_a_native_deployment(client: openai.OpenAI, upstream: FakeResponses) -> None:
    response = client.responses.create(model="native-echo", input="news?", tools=[{"type": "web_search"}])
    assert response.output_text == "echo: news?"
    assert upstream.bodies("/v1/responses")[-1]["tools"] == [{"type": "web_search"}]


@pytest.mark.parametrize("model", ["native-echo", "compat-echo", "claude-echo"])
def test_input_tokens(client: openai.OpenAI, model: str) -> None:
    counted = client.responses.input_tokens.count(model=model, input="hello there, how are you?")
    assert counted.object == "response.input_tokens" and counted.input_tokens > 0


@pytest.mark.parametrize("model", ["native-cut", "compat-cut", "claude-cut", "gemini-cut"])
def test_a_failure_mid_stream_ends_with_error_and_response_failed(client: openai.OpenAI, model: str) -> None:
    events = list(client.responses.create(model=model, input="hello there", stream=True))
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed" and failed.response.error is not None


def test_an_upstream_error_before_the_first_byte_is_openai_shaped(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model="compat-echo", input=[{"type": "item_reference", "id": "x"}], stream=True
        )
