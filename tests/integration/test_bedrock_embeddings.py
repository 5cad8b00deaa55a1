"""Embeddings on Bedrock (Titan one call per text, Cohere batched) through `/v1/embeddings`."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.bedrock import FakeBedrock, fake_vector


def test_titan_embeds_each_text_with_dimensions(
    bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock
) -> None:
    result = bedrock_client.embeddings.create(
        model="br-titan", input=["hello world", "good bye"], dimensions=256, encoding_format="float"
    )
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == fake_vector("hello world", 256)
    assert result.data[1].embedding == fake_vector("good bye", 256)
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (4, 4)
    assert result.model == "amazon.titan-embed-text-v2:0"
    calls = sorted(
        (r.operation, r.body["inputText"], r.body["dimensions"], r.body["normalize"])
        for r in bedrock_fake.requests
    )
    assert calls == [("invoke", "good bye", 256, True), ("invoke", "hello world", 256, True)]


def test_cohere_embeds_a_batch_in_one_call(bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock) -> None:
    result = bedrock_client.embeddings.create(
        model="br-cohere", input=["one", "two three"], encoding_format="float"
    )
    assert [d.embedding for d in result.data] == [fake_vector("one", 1024), fake_vector("two three", 1024)]
    assert result.usage.prompt_tokens == 3
    assert [r.body for r in bedrock_fake.requests] == [
        {"texts": ["one", "two three"], "input_type": "search_document"}
    ]


def test_base64_as_the_sdk_asks_by_default(bedrock_client: openai.OpenAI) -> None:
    result = bedrock_client.embeddings.create(model="br-titan", input="hello world", dimensions=256)
    expected = fake_vector("hello world", 256)
    assert result.data[0].embedding == pytest.approx(expected, abs=1e-6)


def test_fields_bedrock_cannot_honour_are_rejected(
    bedrock_client: openai.OpenAI, bedrock_fake: FakeBedrock
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        bedrock_client.embeddings.create(model="br-cohere", input="x", dimensions=256)
    assert caught.value.body["param"] == "dimensions"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        bedrock_client.embeddings.create(model="br-titan", input=[[1, 2, 3]])
    assert caught.value.body["param"] == "input"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        bedrock_client.embeddings.create(model="br-claude", input="x")
    assert caught.value.body["param"] == "model"  # type: ignore[index]
    assert not bedrock_fake.requests


def test_embedding_errors_map_like_chat_errors(bedrock_client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        bedrock_client.embeddings.create(model="br-titan", input=["fine", "error-ThrottlingException"])
    with pytest.raises(openai.BadRequestError) as caught:
        bedrock_client.embeddings.create(model="br-cohere", input=["error-context"])
    assert caught.value.code == "context_length_exceeded"
