"""Titan and Cohere embedding requests on Bedrock, as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.providers.bedrock.embeddings import (
    cohere_bodies,
    cohere_vectors,
    embedding_family,
    embedding_inputs,
    embeddings_response,
    titan_body,
)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("amazon.titan-embed-text-v2:0", "titan"),
        ("amazon.titan-embed-text-v1", "titan"),
        ("cohere.embed-english-v3", "cohere"),
        ("us.cohere.embed-v4:0", "cohere"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0", "titan"),
    ],
)
def test_family_by_model_id(model: str, family: str) -> None:
    assert embedding_family(model) == family


def test_other_models_cannot_embed() -> None:
    with pytest.raises(InvalidRequest) as caught:
        embedding_family("anthropic.claude-3-haiku-20240307-v1:0")
    assert caught.value.param == "model"


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"input": [1, 2, 3]}, "input"),
        ({"input": [[1, 2]]}, "input"),
        ({"input": []}, "input"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "truncate": "END"}, "truncate"),
    ],
)
def test_inputs_bedrock_cannot_take_are_rejected(request_body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        embedding_inputs(request_body)
    assert caught.value.param == param


def test_inputs() -> None:
    assert embedding_inputs({"input": "one", "user": "u", "encoding_format": "base64"}) == ["one"]
    assert embedding_inputs({"input": ["a", "b"]}) == ["a", "b"]


def test_titan_bodies() -> None:
    assert titan_body("hi", {"dimensions": 512}, "amazon.titan-embed-text-v2:0") == {
        "inputText": "hi",
        "dimensions": 512,
        "normalize": True,
    }
    assert titan_body("hi", {}, "amazon.titan-embed-text-v2:0") == {"inputText": "hi", "normalize": True}
    assert titan_body("hi", {}, "amazon.titan-embed-text-v1") == {"inputText": "hi"}
    with pytest.raises(InvalidRequest, match="dimensions"):
        titan_body("hi", {"dimensions": 512}, "amazon.titan-embed-text-v1")


def test_cohere_bodies_batch_by_96() -> None:
    texts = [f"t{i}" for i in range(200)]
    bodies = cohere_bodies(texts, {}, "cohere.embed-english-v3")
    assert [len(b["texts"]) for b in bodies] == [96, 96, 8]
    assert [t for b in bodies for t in b["texts"]] == texts
    assert {b["input_type"] for b in bodies} == {"search_document"}
    query = cohere_bodies(["q"], {"input_type": "search_query", "dimensions": 256}, "cohere.embed-v4:0")
    assert query == [{"texts": ["q"], "input_type": "search_query", "output_dimension": 256}]
    with pytest.raises(InvalidRequest, match="dimensions"):
        cohere_bodies(["q"], {"dimensions": 256}, "cohere.embed-english-v3")


def test_cohere_vectors_in_either_shape() -> None:
    assert cohere_vectors({"embeddings": [[1.0], [2.0]]}) == [[1.0], [2.0]]
    assert cohere_vectors({"embeddings": {"float": [[3.0]]}}) == [[3.0]]


def test_openai_response_shape() -> None:
    assert embeddings_response([[0.5, 1.0]], "m", 3) == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 1.0]}],
        "model": "m",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
