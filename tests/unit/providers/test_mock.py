"""The mock provider: deterministic echo, word-by-word streaming, usage, latency, embeddings."""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

import pytest

from llm_gateway.core.errors import InvalidRequest, UpstreamTimeout
from llm_gateway.core.types import ChatChunk, ChatRequest
from llm_gateway.providers.mock import DEFAULT_REPLY, MockProvider, MockSettings, mock_embedding
from llm_gateway.providers.transport import HttpClient
from tests.gateway import UPSTREAM_CLIENT


def mock(**settings: Any) -> MockProvider:
    config = MockSettings(type="mock", **settings)
    return MockProvider("offline", config, HttpClient("offline", config, client=UPSTREAM_CLIENT))


def ask(text: str, **extra: Any) -> ChatRequest:
    request: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": text},
        ],
        **extra,
    }
    return request  # type: ignore[return-value]


async def collect(provider: MockProvider, request: ChatRequest, **kwargs: Any) -> list[ChatChunk]:
    return [chunk async for chunk in provider.stream(request, "mock-1", **kwargs)]


async def test_complete_echoes_the_last_user_message_with_usage() -> None:
    completion = await mock().complete(ask("what is two plus two"), "mock-1")
    assert completion["object"] == "chat.completion"
    assert completion["id"].startswith("chatcmpl-mock-")
    assert completion["model"] == "mock-1"
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "what is two plus two"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    # Words stand in for tokens: 2 + 2 + 2 + 5 words in, 5 out.
    assert completion["usage"] == {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}


async def test_complete_is_deterministic_apart_from_id_and_time() -> None:
    provider = mock()
    first, second = [await provider.complete(ask("same"), "m") for _ in range(2)]
    assert first["choices"] == second["choices"] and first["usage"] == second["usage"]
    assert first["id"] != second["id"]


async def test_multi_part_content_is_echoed_as_its_text() -> None:
    request: Any = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look "},
                    {"type": "image_url"},
                    {"type": "text", "text": "here"},
                ],
            }
        ]
    }
    completion = await mock().complete(request, "m")
    assert completion["choices"][0]["message"]["content"] == "look here"


@pytest.mark.parametrize(
    "messages",
    [[], [{"role": "system", "content": "only system"}], [{"role": "user", "content": ""}]],
)
async def test_nothing_to_echo_gives_the_default_reply(messages: list[Any]) -> None:
    completion = await mock().complete({"messages": messages}, "m")
    assert completion["choices"][0]["message"]["content"] == DEFAULT_REPLY


async def test_a_fixed_reply_is_configurable() -> None:
    completion = await mock(reply="always this").complete(ask("anything"), "m")
    assert completion["choices"][0]["message"]["content"] == "always this"


async def test_stream_sends_the_reply_word_by_word() -> None:
    chunks = await collect(mock(), ask("one two three"))
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "mock-1" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "one "},
        {"content": "two "},
        {"content": "three"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, None, "stop"]
    assert all("usage" not in c for c in chunks)


async def test_stream_reports_usage_when_asked() -> None:
    chunks = await collect(mock(), ask("one two three", stream_options={"include_usage": True}))
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    text = "".join(str(c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert text == "one two three"


async def test_stream_with_include_usage_false_has_no_usage_chunk() -> None:
    chunks = await collect(mock(), ask("a b", stream_options={"include_usage": False}))
    assert all(c["choices"] for c in chunks)


async def test_latency_delays_the_answer() -> None:
    provider = mock(latency_ms=80)
    start = time.monotonic()
    await provider.complete(ask("x"), "m")
    assert time.monotonic() - start >= 0.08
    start = time.monotonic()
    stream = provider.stream(ask("x"), "m")
    await anext(stream)
    assert time.monotonic() - start >= 0.08
    await stream.aclose()  # type: ignore[attr-defined]


async def test_no_latency_is_fast() -> None:
    start = time.monotonic()
    await collect(mock(), ask("a b c d e f g h"))
    assert time.monotonic() - start < 0.05


async def test_chunk_delay_spaces_the_words() -> None:
    provider = mock(chunk_delay_ms=30)
    stamps: list[float] = []
    async for chunk in provider.stream(ask("one two three"), "m"):
        if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
            stamps.append(time.monotonic())
    assert len(stamps) == 3
    assert stamps[1] - stamps[0] >= 0.03 and stamps[2] - stamps[1] >= 0.03


async def test_latency_past_the_timeout_times_out_like_an_upstream() -> None:
    provider = mock(latency_ms=10_000)
    start = time.monotonic()
    with pytest.raises(UpstreamTimeout) as caught:
        await provider.complete(ask("x"), "m", timeout=0.05)
    assert 0.05 <= time.monotonic() - start < 1
    assert caught.value.provider == "offline" and caught.value.status_code == 504
    with pytest.raises(UpstreamTimeout):
        await collect(provider, ask("x"), timeout=0.05)


async def test_a_silent_gap_between_chunks_past_the_timeout_times_out() -> None:
    provider = mock(chunk_delay_ms=10_000, timeout=0.05)
    received: list[ChatChunk] = []
    with pytest.raises(UpstreamTimeout):
        async for chunk in provider.stream(ask("one two"), "m"):
            received.append(chunk)
    assert [c["choices"][0]["delta"] for c in received] == [
        {"role": "assistant", "content": ""},
        {"content": "one "},
    ]


async def test_embeddings_are_deterministic_floats() -> None:
    provider = mock(embedding_dimensions=16)
    request = {"input": ["hello world", "other", "hello world"]}
    first = await provider.embed(request, "emb-1")
    second = await provider.embed(request, "emb-1")
    assert first == second
    assert first["object"] == "list" and first["model"] == "emb-1"
    vectors = [item["embedding"] for item in first["data"]]
    assert [item["index"] for item in first["data"]] == [0, 1, 2]
    assert all(item["object"] == "embedding" for item in first["data"])
    assert all(len(v) == 16 and all(-1 <= x <= 1 for x in v) for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert first["usage"] == {"prompt_tokens": 5, "total_tokens": 5}  # words: 2 + 1 + 2


async def test_embedding_of_one_string_and_requested_dimensions() -> None:
    result = await mock().embed({"input": "solo", "dimensions": 3}, "e")
    assert len(result["data"]) == 1
    assert result["data"][0]["embedding"] == mock_embedding("solo", 3)
    assert mock_embedding("solo", 3) == mock_embedding("solo", 40)[:3]
    assert len((await mock().embed({"input": "solo"}, "e"))["data"][0]["embedding"]) == 8


async def test_base64_embeddings_decode_to_the_same_floats() -> None:
    provider = mock(embedding_dimensions=5)
    floats = await provider.embed({"input": "x"}, "e")
    encoded = await provider.embed({"input": "x", "encoding_format": "base64"}, "e")
    text = encoded["data"][0]["embedding"]
    assert isinstance(text, str)
    decoded = struct.unpack("<5f", base64.b64decode(text))
    assert decoded == pytest.approx(floats["data"][0]["embedding"], abs=1e-6)


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"input": 5}, "input"),
        ({"input": None}, "input"),
        ({"input": {"text": "x"}}, "input"),
        ({"input": "x", "dimensions": "8"}, "dimensions"),
        ({"input": "x", "dimensions": -1}, "dimensions"),
        ({"input": "x", "dimensions": 5000}, "dimensions"),
        ({"input": "x", "dimensions": True}, "dimensions"),
    ],
)
async def test_bad_embedding_requests_are_400_naming_the_field(
    request_body: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await mock().embed(request_body, "e")
    assert caught.value.param == param and caught.value.status_code == 400
