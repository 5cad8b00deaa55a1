"""Embeddings through the pipeline: input validation, capability-narrowed model resolution,
base64 packing; over in-process stub providers."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from llm_gateway.core.context import Call, Operation
from llm_gateway.core.errors import AllDeploymentsFailed, InvalidRequest, ModelNotFound, UpstreamUnavailable
from llm_gateway.core.types import JSON
from llm_gateway.services.embeddings import apply_encoding, check_embedding_request, encode_base64
from llm_gateway.services.pipeline import Pipeline
from tests.stubs import VECTOR, EmbeddingStub, Request, StubProvider, context, pipeline


def embeddings() -> tuple[Pipeline, EmbeddingStub]:
    embedder = EmbeddingStub("emb")
    models = {
        "embedder": {"deployments": [{"provider": "emb", "model": "upstream-embed"}]},
        "chatter": {"deployments": [{"provider": "chat"}]},
        "mixed": {"deployments": [{"provider": "chat", "weight": 100}, {"provider": "emb"}]},
    }
    return pipeline(embedder, StubProvider("chat"), models=models, default_model="embedder"), embedder


def embed(body: JSON) -> Call:
    return Call(Operation.EMBEDDINGS, body, model=body.get("model"))


async def test_routes_to_the_deployment_and_keeps_floats() -> None:
    service, embedder = embeddings()
    body = {"model": "embedder", "input": "hi", "encoding_format": "float"}
    ctx = context()
    value = await service.complete(ctx, embed(body))
    assert value["data"][0]["embedding"] == VECTOR
    assert ctx.route is not None
    assert (ctx.route.provider, ctx.route.model, ctx.route.attempts) == ("emb", "upstream-embed", 1)
    assert embedder.requests == [Request("embed", body, "upstream-embed")]


async def test_base64_is_packed_by_the_gateway() -> None:
    service, _ = embeddings()
    value = await service.complete(context(), embed({"input": ["hi"], "encoding_format": "base64"}))
    raw = base64.b64decode(value["data"][0]["embedding"])
    assert struct.unpack("<3f", raw) == struct.unpack("<3f", struct.pack("<3f", *VECTOR))


async def test_the_default_model_serves_a_call_naming_none() -> None:
    service, embedder = embeddings()
    call = embed({"input": "hi"})
    await service.complete(context(), call)
    assert call.model == "embedder"
    assert [r.model for r in embedder.requests] == ["upstream-embed"]


async def test_chat_only_model_is_a_400_before_any_call() -> None:
    service, embedder = embeddings()
    with pytest.raises(InvalidRequest) as caught:
        await service.complete(context(), embed({"model": "chatter", "input": "hi"}))
    assert (caught.value.status_code, caught.value.param, caught.value.code) == (
        400,
        "model",
        "model_not_supported",
    )
    assert embedder.requests == []


async def test_a_mixed_group_embeds_on_its_embedding_deployments_only() -> None:
    service, embedder = embeddings()
    for _ in range(20):  # the chat-only deployment has 100x the weight, and is never picked
        ctx = context()
        await service.complete(ctx, embed({"model": "mixed", "input": "hi"}))
        assert ctx.route is not None and ctx.route.provider == "emb"
    assert len(embedder.requests) == 20


async def test_unknown_model_is_404() -> None:
    service, embedder = embeddings()
    with pytest.raises(ModelNotFound) as caught:
        await service.complete(context(), embed({"model": "nope", "input": "hi"}))
    assert caught.value.status_code == 404
    assert embedder.requests == []


async def test_a_failed_attempt_is_retried_unless_the_client_said_no() -> None:
    service, embedder = embeddings()
    embedder.errors = [UpstreamUnavailable("down", provider="emb")]
    ctx = context()
    await service.complete(ctx, embed({"model": "embedder", "input": "hi"}))
    assert ctx.route is not None and ctx.route.attempts == 2

    embedder.errors = [UpstreamUnavailable("down", provider="emb")]
    with pytest.raises(AllDeploymentsFailed) as caught:
        await service.complete(context(retries=False), embed({"model": "embedder", "input": "hi"}))
    assert caught.value.attempts == 1
    assert len(embedder.requests) == 3


async def test_embeddings_cannot_be_streamed() -> None:
    service, embedder = embeddings()
    call = Call(Operation.EMBEDDINGS, {"input": "hi"}, stream=True)
    with pytest.raises(InvalidRequest) as caught:
        await service.stream(context(), call)
    assert caught.value.param == "stream"
    assert embedder.requests == []


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


async def test_a_fallback_group_embeds_on_its_embedding_deployments_only() -> None:
    service, embedder = embeddings()
    embedder.errors = [UpstreamUnavailable("down", provider="emb")] * 3  # every attempt on embedder
    ctx = context(fallbacks=["mixed"])
    await service.complete(ctx, embed({"model": "embedder", "input": "hi"}))
    assert ctx.route is not None
    assert (ctx.route.provider, ctx.route.fallback) == ("emb", "mixed")
