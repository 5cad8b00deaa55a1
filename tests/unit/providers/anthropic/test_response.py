"""Anthropic Message → chat completion, and Anthropic errors → the gateway's error tree."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llm_gateway.core.errors import (
    ContextLengthExceeded,
    ProviderError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
    is_retryable,
)
from llm_gateway.providers.anthropic.errors import anthropic_error, stream_error
from llm_gateway.providers.anthropic.response import chat_usage, finish_reason, from_anthropic


def message(*blocks: dict[str, Any], stop_reason: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": list(blocks),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


def test_text_answer() -> None:
    completion = from_anthropic(
        message({"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}), created=7
    )
    assert completion == {
        "id": "msg_1",
        "object": "chat.completion",
        "created": 7,
        "model": "claude-x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 0},
        },
    }


def test_tool_use_thinking_and_ignored_blocks() -> None:
    completion = from_anthropic(
        message(
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "redacted_thinking", "data": "xx"},
            {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "t2", "name": "v", "input": {}},
            stop_reason="tool_use",
        ),
        created=0,
    )
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "hmm",
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "w", "arguments": '{"city":"Paris"}'}},
            {"id": "t2", "type": "function", "function": {"name": "v", "arguments": "{}"}},
        ],
    }


def test_the_json_tool_answer_is_content() -> None:
    completion = from_anthropic(
        message(
            {"type": "tool_use", "id": "t1", "name": "json_response", "input": {"a": 1}},
            stop_reason="tool_use",
        ),
        created=0,
        json_tool="json_response",
    )
    choice = completion["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": '{"a":1}'}
    assert choice["finish_reason"] == "stop"


def test_an_empty_answer_has_empty_content() -> None:
    completion = from_anthropic(message(stop_reason="end_turn"), created=0)
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": ""}


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        ("something_new", "stop"),
        (None, None),
    ],
)
def test_finish_reasons(stop_reason: str | None, expected: str | None) -> None:
    assert finish_reason(stop_reason, tool_calls=True) == expected


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens() -> None:
    usage = chat_usage(
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
            "output_tokens": 3,
        }
    )
    assert usage == {
        "prompt_tokens": 130,
        "completion_tokens": 3,
        "total_tokens": 133,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_tokens": 20},
    }
    assert chat_usage(None)["total_tokens"] == 0


def error(kind: str, text: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": text}, "request_id": "req_1"})


@pytest.mark.parametrize(
    ("status", "kind", "cls", "gateway_status"),
    [
        (400, "invalid_request_error", UpstreamStatusError, 400),
        (401, "authentication_error", UpstreamStatusError, 401),
        (403, "permission_error", UpstreamStatusError, 403),
        (404, "not_found_error", UpstreamStatusError, 404),
        (413, "request_too_large", UpstreamStatusError, 413),
        (429, "rate_limit_error", UpstreamRateLimited, 429),
        (500, "api_error", UpstreamUnavailable, 502),
        (504, "timeout_error", UpstreamTimeout, 504),
        (529, "overloaded_error", UpstreamOverloaded, 503),
    ],
)
def test_http_errors(status: int, kind: str, cls: type[ProviderError], gateway_status: int) -> None:
    mapped = anthropic_error(status, error(kind, "boom"), {}, provider="claude")
    assert type(mapped) is cls
    assert mapped.status_code == gateway_status
    assert "boom" in mapped.message
    assert is_retryable(mapped) == (status in (429, 500, 504, 529))


@pytest.mark.parametrize(
    "text",
    [
        "prompt is too long: 210000 tokens > 200000 maximum",
        "input length and `max_tokens` exceed context limit",
    ],
)
def test_prompt_too_long_is_context_length_exceeded(text: str) -> None:
    mapped = anthropic_error(400, error("invalid_request_error", text), {}, provider="claude")
    assert isinstance(mapped, ContextLengthExceeded)
    assert mapped.code == "context_length_exceeded"


def test_rate_limit_keeps_retry_after_and_secrets_are_redacted() -> None:
    mapped = anthropic_error(
        429, error("rate_limit_error", "key sk-ant-secret1 is limited"), {"retry-after": "12"},
        provider="claude", secrets=("sk-ant-secret1",),
    )  # fmt: skip
    assert mapped.retry_after == 12
    assert mapped.headers["retry-after"] == "12"
    assert "sk-ant-secret1" not in mapped.message
    # The gateway-wide code, as every provider answers it (the type stays rate_limit_error).
    assert mapped.code == "rate_limit_exceeded"
    assert mapped.error_type == "rate_limit_error"
    assert stream_error(error("rate_limit_error", "slow"), provider="claude").code == "rate_limit_exceeded"


def test_a_body_that_is_not_json_still_maps() -> None:
    mapped = anthropic_error(502, b"<html>bad gateway</html>", {}, provider="claude")
    assert isinstance(mapped, UpstreamUnavailable)
    assert "bad gateway" in mapped.message


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("overloaded_error", UpstreamOverloaded),
        ("rate_limit_error", UpstreamRateLimited),
        ("api_error", UpstreamUnavailable),
        ("something_new", UpstreamUnavailable),
        ("invalid_request_error", UpstreamStatusError),
    ],
)
def test_stream_error_events(kind: str, cls: type[ProviderError]) -> None:
    mapped = stream_error({"type": "error", "error": {"type": kind, "message": "m"}}, provider="claude")
    assert type(mapped) is cls
    assert isinstance(stream_error(error(kind, "m"), provider="claude"), cls)
