"""The legacy completions API translated onto chat: what is refused, and the answer and
chunks rendered as `text_completion`s."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.services.completions import (
    check_completion_request,
    to_chat,
    to_text_chunk,
    to_text_completion,
)
from tests.stubs import completion


def test_the_prompt_becomes_one_user_message_with_the_legacy_default_max_tokens() -> None:
    chat = to_chat({"model": "m", "prompt": "Say hi", "temperature": 0.2, "stop": ["\n"]})
    assert chat == {
        "model": "m",
        "messages": [{"role": "user", "content": "Say hi"}],
        "temperature": 0.2,
        "stop": ["\n"],
        "max_tokens": 16,
    }
    assert to_chat({"prompt": ["only one"], "max_tokens": 5, "n": 1, "echo": False})["messages"] == [
        {"role": "user", "content": "only one"}
    ]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"suffix": "end"}, "'suffix'"),
        ({"echo": True, "logprobs": 2}, "'echo', 'logprobs'"),
        ({"best_of": 3, "n": 2}, "'best_of', 'n'"),
    ],
)
def test_fields_without_a_chat_equivalent_are_refused_by_name(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_chat({"prompt": "x", **fields})
    assert named in caught.value.message
    assert caught.value.code == "unsupported_parameter"


@pytest.mark.parametrize("prompt", [["a", "b"], [1, 2, 3], [[1, 2]]])
def test_several_prompts_or_token_ids_are_refused(prompt: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_chat({"prompt": prompt})
    assert caught.value.param == "prompt"


def test_a_request_needs_a_prompt() -> None:
    with pytest.raises(InvalidRequest):
        check_completion_request({"model": "m"})


def test_a_chat_completion_renders_as_text_completion() -> None:
    rendered = to_text_completion(completion("hello", "up"))
    assert rendered["object"] == "text_completion"
    assert rendered["choices"] == [{"text": "hello", "index": 0, "logprobs": None, "finish_reason": "stop"}]
    assert rendered["usage"]["total_tokens"] > 0


def test_chunks_carry_text_finish_and_usage_and_skip_empty_ones() -> None:
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "up"}
    role = {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
    text = {**base, "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
    end = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    usage = {**base, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    assert to_text_chunk(role) is None  # type: ignore[arg-type]
    assert to_text_chunk(text)["choices"][0]["text"] == "hi"  # type: ignore[arg-type,index]
    assert to_text_chunk(end)["choices"][0]["finish_reason"] == "length"  # type: ignore[arg-type,index]
    assert to_text_chunk(usage)["usage"]["total_tokens"] == 2  # type: ignore[arg-type,index]
