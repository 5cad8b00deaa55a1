"""A Bedrock Converse answer as an OpenAI chat completion: pure functions, no I/O.

Converse shapes follow botocore's service model (`bedrock-runtime/2023-09-30`); the request
direction is `request`, the stream `stream`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from llm_gateway.core.types import JSON, ChatCompletion, Message, ToolCall, Usage

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def from_converse(body: JSON, model: str, request_id: str | None = None) -> ChatCompletion:
    """A Converse response as an OpenAI chat completion."""
    blocks = ((body.get("output") or {}).get("message") or {}).get("content") or []
    text = "".join(b["text"] for b in blocks if "text" in b)
    reasoning = "".join(
        ((b["reasoningContent"].get("reasoningText") or {}).get("text") or "")
        for b in blocks
        if "reasoningContent" in b
    )
    calls: list[ToolCall] = [
        {
            "id": b["toolUse"]["toolUseId"],
            "type": "function",
            "function": {
                "name": b["toolUse"]["name"],
                "arguments": orjson.dumps(b["toolUse"].get("input", {})).decode(),
            },
        }
        for b in blocks
        if "toolUse" in b
    ]
    message: Message = {"role": "assistant", "content": text if text or not calls else None}
    if reasoning:
        message["reasoning_content"] = reasoning  # type: ignore[typeddict-unknown-key]
    if calls:
        message["tool_calls"] = calls
    completion: ChatCompletion = {
        "id": completion_id(request_id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(body.get("stopReason")),
                "logprobs": None,
            }
        ],
    }
    if body.get("usage"):
        completion["usage"] = converse_usage(body["usage"])
    return completion


def completion_id(request_id: str | None) -> str:
    return f"chatcmpl-{request_id or uuid.uuid4().hex}"


def finish_reason(stop_reason: Any) -> str:
    return STOP_REASONS.get(str(stop_reason), "stop")


def converse_usage(usage: JSON) -> Usage:
    """Bedrock counts cache reads and writes apart from `inputTokens`; OpenAI's prompt_tokens
    includes cached tokens, with the cached share in `prompt_tokens_details`."""
    cache_read = int(usage.get("cacheReadInputTokens") or 0)
    cache_write = int(usage.get("cacheWriteInputTokens") or 0)
    prompt = int(usage.get("inputTokens") or 0) + cache_read + cache_write
    completion = int(usage.get("outputTokens") or 0)
    result: Usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cache_read or cache_write:
        result["prompt_tokens_details"] = {"cached_tokens": cache_read, "cache_creation_tokens": cache_write}
    return result
