"""Offline token counts: tiktoken's own numbers from BPE files that ship in a wheel, with
nothing fetched."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest
import tiktoken_ext.openai_public as openai_public

from llm_gateway.core.context import Operation
from llm_gateway.services import tokens
from llm_gateway.services.tokens import (
    count_prompt_tokens,
    count_text_tokens,
    encoding,
    encoding_for_model,
    encoding_name,
)

# The OpenAI cookbook's `num_tokens_from_messages` example: 129 tokens for gpt-3.5/gpt-4,
# 124 for gpt-4o, as the API reports them.
COOKBOOK = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
        "into plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-3.5-turbo", 129), ("gpt-4-0613", 129), ("gpt-4o", 124), ("gpt-4o-mini", 124)],
)
def test_chat_counts_match_the_cookbook(model: str, expected: int) -> None:
    assert count_prompt_tokens(Operation.CHAT, {"messages": COOKBOOK}, model) == expected


def test_text_counts_match_known_values() -> None:
    assert count_text_tokens("tiktoken is great!", "gpt-4") == 6
    assert count_text_tokens("hello world", "gpt-4o") == 2
    assert count_text_tokens("", "gpt-4o") == 0
    assert encoding("cl100k_base").encode_ordinary("hello world") == [15339, 1917]
    assert encoding("o200k_base").encode_ordinary("hello world") == [24912, 2375]
    assert count_text_tokens("<|endoftext|>", "gpt-4o") == 7  # user text, not a special token


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("gpt-4o-2024-08-06", "o200k_base"),
        ("gpt-4.1-mini", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("claude-3-5-sonnet-20240620", "cl100k_base"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "cl100k_base"),
    ],
)
def test_encoding_by_model_family(model: str, name: str) -> None:
    assert encoding_name(model) == name
    assert encoding_for_model(model).name == name


VOCAB = {"cl100k_base": (100_256, 100_277), "o200k_base": (199_998, 200_019)}


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_encodings_are_tiktokens_own(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same split pattern, ranks and special tokens as tiktoken's constructor, which is fed
    the bundled ranks instead of downloading them."""
    ours = encoding(name)
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda url, expected_hash: {})
    theirs = openai_public.ENCODING_CONSTRUCTORS[name]()
    assert ours._pat_str == theirs["pat_str"]
    assert ours._special_tokens == theirs["special_tokens"]
    ranks, vocab = VOCAB[name]
    assert ours.n_vocab == vocab
    for rank in (0, 1000, ranks - 1):  # every rank round-trips through the Rust core
        assert ours.encode_single_token(ours.decode_single_token_bytes(rank)) == rank
    assert ours._mergeable_ranks == {}  # the Python copy is dropped (the core keeps its own)


def test_counting_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("token counting tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    tokens.forget()
    try:
        assert count_text_tokens("tiktoken is great!", "gpt-4") == 6
        assert count_text_tokens("hello world", "gpt-4o") == 2
    finally:
        tokens.forget()


def test_a_bpe_file_with_the_wrong_hash_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tokens.EXPECTED_SHA256, "cl100k_base", "0" * 64)
    tokens.forget()
    try:
        with pytest.raises(tokens.EncodingDataError, match="hash"):
            encoding("cl100k_base")
    finally:
        tokens.forget()


def test_chat_parts_tools_and_tool_calls_are_counted() -> None:
    plain = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}]}
    base = count_prompt_tokens(Operation.CHAT, plain, "gpt-4o")
    assert base == 3 + 3 + 1 + count_text_tokens("What is the weather in Paris?", "gpt-4o")
    parts = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is the weather in Paris?"}],
            }
        ]
    }
    assert count_prompt_tokens(Operation.CHAT, parts, "gpt-4o") == base
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 10_000}}
    parts["messages"][0]["content"].append(image)  # type: ignore[attr-defined]
    assert count_prompt_tokens(Operation.CHAT, parts, "gpt-4o") == base + tokens.IMAGE_TOKENS
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    with_tools = count_prompt_tokens(Operation.CHAT, {**plain, "tools": [tool]}, "gpt-4o")
    assert with_tools > base
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    history = {
        "messages": [
            *plain["messages"],
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ]
    }
    assert count_prompt_tokens(Operation.CHAT, history, "gpt-4o") > base + 10


def test_anthropic_bodies_are_counted() -> None:
    body = {
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}}
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
        ],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
    }
    model = "claude-3-5-sonnet-20240620"
    count = count_prompt_tokens(Operation.MESSAGES, body, model)
    assert count == count_prompt_tokens(Operation.COUNT_TOKENS, body, model)
    text = sum(
        count_text_tokens(t, model)
        for t in ("Be brief.", "What is the weather in Paris?", "get_weather", '{"city":"Paris"}', "sunny")
    )
    tools = count_text_tokens('[{"name":"get_weather","input_schema":{"type":"object"}}]', model)
    assert count == 3 + 3 * 3 + text + tools


def test_embedding_inputs_are_counted() -> None:
    model = "text-embedding-3-small"
    assert count_prompt_tokens(Operation.EMBEDDINGS, {"input": "hello world"}, model) == 2
    assert count_prompt_tokens(Operation.EMBEDDINGS, {"input": ["hello world", "hello"]}, model) == 3
    assert count_prompt_tokens(Operation.EMBEDDINGS, {"input": [1, 2, 3]}, model) == 3
    assert count_prompt_tokens(Operation.EMBEDDINGS, {"input": [[1, 2], [3]]}, model) == 3
    assert count_prompt_tokens(Operation.EMBEDDINGS, {}, model) == 0


async def test_a_first_build_runs_in_a_worker_thread_and_is_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    build = tokens._build

    def recording(name: str) -> Any:
        threads.append(threading.get_ident())
        return build(name)

    monkeypatch.setattr(tokens, "_build", recording)
    tokens.forget()
    try:
        assert not tokens.has_encoding("gpt-4o")
        # three first requests at once, two models of one encoding: one build, off the loop
        await asyncio.gather(*(tokens.build_encoding(m) for m in ("gpt-4o", "gpt-4o-mini", "gpt-4o")))
        assert tokens.has_encoding("gpt-4o") and tokens.has_encoding("gpt-4o-mini")
        assert not tokens.has_encoding("gpt-4")  # cl100k_base: not built
        assert len(threads) == 1 and threads[0] != threading.get_ident()
    finally:
        tokens.forget()
