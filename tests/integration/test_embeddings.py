"""`/v1/embeddings` through the gateway with the official openai SDK: the mock provider, a
fake OpenAI upstream and the fake Google AI Studio, floats and base64, and the 400s/404s."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from llm_gateway.providers.mock import mock_embedding
from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory
from tests.fakes.gemini import API_KEY, FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess


def deployment(provider: str, model: str) -> dict[str, Any]:
    return {"deployments": [{"provider": provider, "model": model}]}


@pytest.fixture(scope="module")
def embeddings_gateway(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    fake_gemini_server: tuple[FakeGemini, FakeServer],
    start_gateway: GatewayFactory,
) -> GatewayProcess:
    openai_url, gemini_url = fake_openai[1].url, fake_gemini_server[1].url
    config = {
        "providers": {
            "mock": {"type": "mock"},
            "oai": {"type": "openai", "base_url": f"{openai_url}/v1", "api_key": UPSTREAM_KEY, "timeout": 5},
            "google": {
                "type": "gemini",
                "base_url": f"{gemini_url}/v1beta",
                "api_key": API_KEY,
                "timeout": 5,
            },
        },
        "models": {
            "emb-mock": deployment("mock", "mock-embed"),
            "emb-openai": deployment("oai", "text-embedding-3-small"),
            "emb-gemini": deployment("google", "gemini-embedding-001"),
            "emb-gemini-429": deployment("google", "error-429"),
        },
        "master_key": MASTER_KEY,
    }
    return start_gateway(config)


@pytest.fixture
def eclient(embeddings_gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    url = f"{embeddings_gateway.url}/v1"
    with openai.OpenAI(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=10) as client:
        yield client


def post(gateway: GatewayProcess, body: dict[str, Any]) -> httpx.Response:
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    return httpx.post(f"{gateway.url}/v1/embeddings", json=body, headers=headers, timeout=10)


def floats(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def float32(values: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def test_mock_floats(eclient: openai.OpenAI) -> None:
    result = eclient.embeddings.create(model="emb-mock", input="hello world", encoding_format="float")
    assert result.data[0].embedding == mock_embedding("hello world", 8)
    assert result.usage.prompt_tokens == 2


def test_mock_base64_is_little_endian_float32(embeddings_gateway: GatewayProcess) -> None:
    response = post(
        embeddings_gateway, {"model": "emb-mock", "input": ["a b", "c"], "encoding_format": "base64"}
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert [item["index"] for item in data] == [0, 1]
    assert floats(data[1]["embedding"]) == float32(mock_embedding("c", 8))


def test_openai_upstream_floats_and_fields_forwarded(eclient: openai.OpenAI, fake: FakeOpenAI) -> None:
    raw = eclient.embeddings.with_raw_response.create(
        model="emb-openai", input=["x", "y"], encoding_format="float", dimensions=3, user="u-1"
    )
    result = raw.parse()
    assert [item.embedding for item in result.data] == [[0.1, 0.2, 0.0], [0.1, 0.2, 1.0]]
    sent = fake.last()
    assert sent.path == "/v1/embeddings"
    assert sent.body == {
        "model": "text-embedding-3-small",
        "input": ["x", "y"],
        "encoding_format": "float",
        "dimensions": 3,
        "user": "u-1",
    }
    assert raw.headers["x-llm-gateway-provider"] == "oai"


def test_openai_upstream_base64_when_upstream_answers_floats(
    embeddings_gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    response = post(embeddings_gateway, {"model": "emb-openai", "input": "x", "encoding_format": "base64"})
    assert fake.last().body["encoding_format"] == "base64"
    assert floats(response.json()["data"][0]["embedding"]) == float32([0.1, 0.2, 0.0])


def test_sdk_default_encoding_round_trips(eclient: openai.OpenAI) -> None:
    # Without encoding_format the SDK asks for base64 and decodes it itself.
    result = eclient.embeddings.create(model="emb-gemini", input="hello")
    assert result.data[0].embedding == [5.0, 0.5, -0.25, 0.125]


def test_gemini_single_input_uses_embed_content(eclient: openai.OpenAI, gemini_fake: FakeGemini) -> None:
    result = eclient.embeddings.create(
        model="emb-gemini", input="hello", encoding_format="float", dimensions=3
    )
    assert result.data[0].embedding == [5.0, 0.5, -0.25]
    assert result.usage.prompt_tokens == 2  # estimated: Google reports no count
    sent = gemini_fake.last()
    assert (sent.model, sent.method) == ("gemini-embedding-001", "embedContent")
    assert sent.body == {"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 3}
    assert sent.headers["x-goog-api-key"] == API_KEY


def test_gemini_list_uses_batch_embed_contents(
    embeddings_gateway: GatewayProcess, gemini_fake: FakeGemini
) -> None:
    body = {"model": "emb-gemini", "input": ["hi", "there"], "encoding_format": "base64"}
    response = post(embeddings_gateway, body)
    assert response.status_code == 200
    data = response.json()["data"]
    assert [floats(item["embedding"]) for item in data] == [
        [2.0, 0.5, -0.25, 0.125],
        [5.0, 0.5, -0.25, 0.125],
    ]
    sent = gemini_fake.last()
    assert sent.method == "batchEmbedContents"
    assert sent.body["requests"][1] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "there"}]},
    }


def test_gemini_rate_limit_keeps_retry_after(eclient: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        eclient.embeddings.create(model="emb-gemini-429", input="x")
    assert caught.value.response.headers["retry-after"] == "7"


def test_unknown_model_is_404(eclient: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        eclient.embeddings.create(model="no-such-model", input="x")
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "emb-mock"}, "input"),
        ({"model": "emb-mock", "input": 5}, "input"),
        ({"model": "emb-mock", "input": []}, "input"),
        ({"model": "emb-mock", "input": ""}, "input"),
        ({"model": "emb-mock", "input": ["ok", ""]}, "input[1]"),
        ({"model": "emb-mock", "input": ["ok", 3.5]}, "input[1]"),
        ({"model": "emb-mock", "input": [[1, 2], []]}, "input[1]"),
        ({"model": "emb-mock", "input": ["a", [1]]}, "input"),
        ({"model": "emb-mock", "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"model": "emb-mock", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "emb-mock", "input": "x", "dimensions": True}, "dimensions"),
        ({"model": 7, "input": "x"}, "model"),
        ({"model": "emb-gemini", "input": [[1, 2, 3]]}, "input"),
        ({"model": "emb-gemini", "input": "x", "task": "y"}, "task"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    embeddings_gateway: GatewayProcess, body: dict[str, Any], param: str
) -> None:
    response = post(embeddings_gateway, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_token_arrays_pass_to_openai_upstreams(eclient: openai.OpenAI, fake: FakeOpenAI) -> None:
    eclient.embeddings.create(model="emb-openai", input=[[1, 2, 3]], encoding_format="float")
    assert fake.last().body["input"] == [[1, 2, 3]]


def test_key_is_required(embeddings_gateway: GatewayProcess) -> None:
    response = httpx.post(f"{embeddings_gateway.url}/v1/embeddings", json={"model": "emb-mock", "input": "x"})
    assert response.status_code == 401


def test_chat_only_provider_is_a_400(start_gateway: GatewayFactory) -> None:
    pytest.importorskip("llm_gateway.providers.anthropic")
    config = {
        "providers": {"claude": {"type": "anthropic", "base_url": "http://127.0.0.1:9", "api_key": "k-0000"}},
        "models": {"chat-only": deployment("claude", "claude-x")},
    }
    gateway = start_gateway(config)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="none", max_retries=0, timeout=10)
    with client, pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="chat-only", input="x")
    assert isinstance(caught.value.body, dict)
    assert (caught.value.body["param"], caught.value.body["code"]) == ("model", "model_not_supported")
