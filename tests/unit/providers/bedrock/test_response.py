"""Bedrock Converse answer → OpenAI chat completion, as pure functions."""

from __future__ import annotations

import pytest

from llm_gateway.providers.bedrock.response import converse_usage, from_converse


def test_response_with_text_tools_reasoning_and_usage() -> None:
    body = {
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "thinking", "signature": "s"}}},
            {"text": "Let me "}, {"text": "check."},
            {"toolUse": {"toolUseId": "t1", "name": "w", "input": {"city": "Oslo"}}},
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
        "metrics": {"latencyMs": 1},
    }  # fmt: skip
    completion = from_converse(body, "m", "req-1")
    assert completion["id"] == "chatcmpl-req-1"
    assert completion["model"] == "m"
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert completion["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Let me check.",
        "reasoning_content": "thinking",
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "w", "arguments": '{"city":"Oslo"}'}}
        ],
    }
    assert completion["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def test_tool_only_answers_have_null_content() -> None:
    body = {
        "output": {"message": {"content": [{"toolUse": {"toolUseId": "t", "name": "w", "input": {}}}]}},
        "stopReason": "tool_use",
    }
    assert from_converse(body, "m")["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    body = {"output": {"message": {"content": [{"text": "x"}]}}, "stopReason": stop_reason}
    assert from_converse(body, "m")["choices"][0]["finish_reason"] == finish


def test_cache_tokens_count_as_prompt_tokens() -> None:
    usage = converse_usage(
        {"inputTokens": 3, "outputTokens": 4, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 20}
    )
    assert usage == {
        "prompt_tokens": 123,
        "completion_tokens": 4,
        "total_tokens": 127,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_tokens": 20},
    }
