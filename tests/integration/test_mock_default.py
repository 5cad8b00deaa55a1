"""Zero-config start: no config file, only the environment, as `make run` and the seed's docs do it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest

from tests.conftest import UPSTREAM_KEY
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess

# Start from nothing, whatever the developer's shell has set.
NOTHING = {
    "OPENAI_API_KEY": "",
    "OPENAI_BASE_URL": "",
    "DEFAULT_MODEL": "",
    "GATEWAY_MASTER_KEY": "",
    "ENVIRONMENT": "",
    "LLM_GATEWAY_CONFIG": "",
}
GATEWAY_KEY = "sk-zero-config-master-key"
HINT = "no config file and no OPENAI_API_KEY: serving the offline 'mock' model"


class ConsoleGateway(GatewayProcess):
    """The installed `llm-gateway serve`, as `make run` starts it, with no --config."""

    def command(self) -> list[str]:
        script = Path(sys.executable).parent / "llm-gateway"
        return [str(script), "serve", "--host", "127.0.0.1", "--port", str(self.port)]


@pytest.fixture(scope="module")
def mock_gateway() -> Iterator[GatewayProcess]:
    gateway = ConsoleGateway(None, NOTHING).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def mock_client(mock_gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{mock_gateway.url}/v1", api_key="anything", max_retries=0, timeout=10)


def test_it_serves_the_mock_model(mock_client: openai.OpenAI) -> None:
    assert [model.id for model in mock_client.models.list()] == ["mock"]


def test_non_streamed_chat_echoes(mock_client: openai.OpenAI) -> None:
    raw = mock_client.chat.completions.with_raw_response.create(
        model="mock", messages=[{"role": "user", "content": "hello offline world"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "hello offline world"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 3)
    assert raw.headers["x-llm-gateway-provider"] == "mock"


def test_streamed_chat_arrives_word_by_word(mock_client: openai.OpenAI) -> None:
    stream = mock_client.chat.completions.create(
        model="mock",
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    words = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert words == ["one ", "two ", "three ", "four"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


def test_a_request_without_a_model_uses_mock(mock_gateway: GatewayProcess) -> None:
    response = httpx2.post(
        f"{mock_gateway.url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "x"}]},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["model"] == "mock"


def test_the_simple_endpoint_works_offline(mock_gateway: GatewayProcess) -> None:
    response = httpx2.post(f"{mock_gateway.url}/api/chat", json={"message": "ping pong"}, timeout=10)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["reply"], answer["provider"], answer["model"]) == ("ping pong", "mock", "mock")


def test_no_key_is_needed_without_gateway_master_key(mock_gateway: GatewayProcess) -> None:
    assert httpx2.get(f"{mock_gateway.url}/v1/models", timeout=10).status_code == 200


def test_it_logs_one_line_saying_how_to_add_a_real_provider(mock_gateway: GatewayProcess) -> None:
    hints = [line for line in mock_gateway.log().splitlines() if HINT in line]
    assert len(hints) == 1, mock_gateway.log()
    assert "OPENAI_API_KEY" in hints[0] and "--config" in hints[0]


@pytest.fixture(scope="module")
def env_gateway(fake_openai: tuple[FakeOpenAI, FakeServer]) -> Iterator[GatewayProcess]:
    env = {
        **NOTHING,
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "OPENAI_BASE_URL": f"{fake_openai[1].url}/v1",
        "DEFAULT_MODEL": "zero-config-model",
    }
    gateway = GatewayProcess(None, env).start()
    yield gateway
    gateway.stop()


def test_openai_environment_serves_default_model_from_that_upstream(
    env_gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    client = openai.OpenAI(base_url=f"{env_gateway.url}/v1", api_key="anything", max_retries=0, timeout=10)
    assert [model.id for model in client.models.list()] == ["zero-config-model"]
    completion = client.chat.completions.create(
        model="zero-config-model", messages=[{"role": "user", "content": "from the env"}]
    )
    assert completion.choices[0].message.content == "echo: from the env"
    received = fake.last()
    assert received.body["model"] == "zero-config-model"
    assert received.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    stream = client.chat.completions.create(
        model="zero-config-model", messages=[{"role": "user", "content": "a b"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "echo: a b"


def test_openai_environment_does_not_serve_mock(env_gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=f"{env_gateway.url}/v1", api_key="anything", max_retries=0, timeout=10)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "x"}])


def test_openai_environment_logs_what_it_serves_but_not_the_key(env_gateway: GatewayProcess) -> None:
    log = env_gateway.log()
    assert "serving 'zero-config-model' from the OpenAI-compatible API" in log
    assert HINT not in log
    assert UPSTREAM_KEY not in log


@pytest.fixture(scope="module")
def locked_gateway() -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(None, {**NOTHING, "GATEWAY_MASTER_KEY": GATEWAY_KEY}).start()
    yield gateway
    gateway.stop()


def test_gateway_master_key_locks_the_api(locked_gateway: GatewayProcess) -> None:
    url = locked_gateway.url
    body = {"model": "mock", "messages": [{"role": "user", "content": "x"}]}
    keyless = httpx2.post(f"{url}/v1/chat/completions", json=body, timeout=10)
    assert keyless.status_code == 401
    assert keyless.json()["error"]["type"] == "authentication_error"
    assert httpx2.post(f"{url}/api/chat", json={"message": "x"}, timeout=10).status_code == 401
    assert httpx2.get(f"{url}/v1/models", timeout=10).status_code == 401
    wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-wrong", max_retries=0, timeout=10)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="mock", messages=[{"role": "user", "content": "x"}])
    right = openai.OpenAI(base_url=f"{url}/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=10)
    reply = right.chat.completions.create(model="mock", messages=[{"role": "user", "content": "let me in"}])
    assert reply.choices[0].message.content == "let me in"
    assert httpx2.get(f"{url}/health", timeout=10).status_code == 200  # probes stay open
    assert GATEWAY_KEY not in locked_gateway.log()
