"""The embeddings service: input validation, model resolution, and base64 conversion."""

from __future__ import annotations

import base64
import random
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.config import GatewayConfig, ProviderSettings
from llm_gateway.core.errors import InvalidRequest, ModelNotFound
from llm_gateway.core.types import ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers.base import Provider
from llm_gateway.providers.transport import HttpClient
from llm_gateway.routing.deployments import ModelCatalog
from llm_gateway.routing.executor import Executor
from llm_gateway.services.embeddings import (
    EmbeddingService,
    apply_encoding,
    check_embedding_request,
    encode_base64,
)


class ChatOnly(Provider):
    settings_model = ProviderSettings

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        raise NotImplementedError

    async def stream(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        raise NotImplementedError
        yield


class FloatEmbedder(ChatOnly):
    """Answers floats whatever `encoding_format` says, as Gemini does."""

    capabilities = frozenset({Capability.CHAT, Capability.EMBEDDINGS})

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.calls: list[tuple[dict[str, Any], str]] = []

    async def embed(
        self, request: dict[str, Any], model: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        self.calls.append((request, model))
        data = [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0, 0.1]}]
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }


def service() -> tuple[EmbeddingService, FloatEmbedder]:
    settings = ProviderSettings(type="fake")
    embedder = FloatEmbedder("emb", settings, HttpClient("emb", settings))
    providers: dict[str, Provider] = {
        "emb": embedder,
        "chat": ChatOnly("chat", settings, HttpClient("chat", settings)),
    }
    config = GatewayConfig.model_validate(
        {
            "providers": {"emb": settings, "chat": settings},
            "models": {
                "embedder": {"deployments": [{"provider": "emb", "model": "upstream-embed"}]},
                "chatter": {"deployments": [{"provider": "chat"}]},
                "mixed": {"deployments": [{"provider": "chat", "weight": 100}, {"provider": "emb"}]},
            },
            "default_model": "embedder",
        }
    )
    return EmbeddingService(ModelCatalog(config, providers), Executor(random.Random(0))), embedder


async def test_routes_to_the_deployment_and_keeps_floats() -> None:
    embeddings, embedder = service()
    served = await embeddings.embed({"model": "embedder", "input": "hi", "encoding_format": "float"})
    assert served.value["data"][0]["embedding"] == [0.5, -1.0, 0.1]
    assert served.target.provider is embedder
    assert embedder.calls == [
        ({"model": "embedder", "input": "hi", "encoding_format": "float"}, "upstream-embed")
    ]


async def test_base64_is_packed_by_the_gateway() -> None:
    embeddings, _ = service()
    served = await embeddings.embed({"input": ["hi"], "encoding_format": "base64"})
    raw = base64.b64decode(served.value["data"][0]["embedding"])
    assert struct.unpack("<3f", raw) == struct.unpack("<3f", struct.pack("<3f", 0.5, -1.0, 0.1))


async def test_chat_only_model_is_a_400_before_any_call() -> None:
    embeddings, embedder = service()
    with pytest.raises(InvalidRequest) as caught:
        await embeddings.embed({"model": "chatter", "input": "hi"})
    assert (caught.value.param, caught.value.code) == ("model", "model_not_supported")
    assert embedder.calls == []


async def test_a_mixed_group_embeds_on_its_embedding_deployments_only() -> None:
    embeddings, embedder = service()
    for _ in range(20):  # the chat-only deployment has 100x the weight, and is never picked
        served = await embeddings.embed({"model": "mixed", "input": "hi"})
        assert served.target.provider is embedder
    assert len(embedder.calls) == 20


async def test_unknown_model_is_404() -> None:
    embeddings, _ = service()
    with pytest.raises(ModelNotFound):
        await embeddings.embed({"model": "nope", "input": "hi"})


def test_apply_encoding_leaves_strings_and_floats_alone() -> None:
    already = {"data": [{"index": 0, "embedding": "AAAA"}]}
    assert apply_encoding(already, "base64") == already
    floats = {"data": [{"index": 0, "embedding": [1.0]}]}
    assert apply_encoding(floats, "float") is floats
    assert apply_encoding(floats, "base64")["data"][0]["embedding"] == encode_base64([1.0]) == "AACAPw=="


@pytest.mark.parametrize(
    "body",
    [
        {"input": "x"},
        {"input": ["x", "y"], "encoding_format": "base64", "dimensions": 3, "user": "u"},
        {"input": [1, 2, 3]},
        {"input": [[1, 2], [3]]},
    ],
)
def test_valid_inputs(body: dict[str, Any]) -> None:
    check_embedding_request(body)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "input"),
        ({"input": None}, "input"),
        ({"input": {"text": "x"}}, "input"),
        ({"input": [True]}, "input[0]"),
        ({"input": [-1]}, "input[0]"),
        ({"input": [[1, "a"]]}, "input[0]"),
        ({"input": "x", "user": 5}, "user"),
        ({"input": "x", "dimensions": "8"}, "dimensions"),
        ({"input": "x", "encoding_format": None, "model": ["m"]}, "model"),
    ],
)
def test_invalid_inputs_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_embedding_request(body)
    assert caught.value.param == param
