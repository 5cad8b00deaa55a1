"""Gemini `GenerateContentResponse` → OpenAI chat completion, as pure functions.

Shared by the non-streamed translation and the stream state machine (`stream`), so
both produce the same finish reasons, usage and tool call ids for the same answer.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any, cast

import orjson

from llm_gateway.core.types import JSON, ChatCompletion, Usage
from llm_gateway.providers.gemini.request import SIGNATURE_MARK

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
"""Gemini finishReason → OpenAI finish_reason; anything else (OTHER, LANGUAGE,
MALFORMED_FUNCTION_CALL, ...) ends the answer as "stop"."""


def finish_reason(reason: str | None, has_tool_calls: bool) -> str:
    """OpenAI's finish_reason. Gemini ends a function-calling turn with STOP; OpenAI says tool_calls."""
    if has_tool_calls and reason in (None, "STOP"):
        return "tool_calls"
    return FINISH_REASONS.get(reason or "STOP", "stop")


def tool_call_id(
    response_id: str, choice: int, position: int, name: str, arguments: str, signature: Any
) -> str:
    """A stable id for a Gemini function call, which has none of its own.

    Derived from the response id and the call's place and content, so the streamed and the
    non-streamed translation agree. Gemini's thought signature, which must be sent back
    with the call on the next turn, rides along in the id (URL-safe base64 after a mark).
    """
    seed = f"{response_id}\0{choice}\0{position}\0{name}\0{arguments}".encode()
    call_id = "call_" + hashlib.sha256(seed).hexdigest()[:24]
    if isinstance(signature, str) and signature:
        call_id += SIGNATURE_MARK + signature.replace("+", "-").replace("/", "_").rstrip("=")
    return call_id


def tool_call(part: JSON, response_id: str, choice: int, position: int) -> JSON:
    """A `functionCall` part → an OpenAI tool call (without the streaming `index`)."""
    call = part["functionCall"]
    name = str(call.get("name", ""))
    arguments = orjson.dumps(call.get("args") or {}).decode()
    return {
        "id": tool_call_id(response_id, choice, position, name, arguments, part.get("thoughtSignature")),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def candidate_parts(candidate: JSON) -> list[JSON]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def to_usage(metadata: Any) -> Usage | None:
    """usageMetadata → OpenAI usage. Thinking tokens count as completion tokens (billed as
    output, as OpenAI counts reasoning tokens); tool-use prompt tokens as prompt tokens."""
    if not isinstance(metadata, dict):
        return None
    prompt = int(metadata.get("promptTokenCount") or 0) + int(metadata.get("toolUsePromptTokenCount") or 0)
    thoughts = int(metadata.get("thoughtsTokenCount") or 0)
    completion = int(metadata.get("candidatesTokenCount") or 0) + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(metadata.get("totalTokenCount") or prompt + completion),
        "prompt_tokens_details": {"cached_tokens": int(metadata.get("cachedContentTokenCount") or 0)},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def to_logprobs(result: Any) -> JSON | None:
    """logprobsResult → OpenAI choice logprobs (`content` entries with `top_logprobs`)."""
    if not isinstance(result, dict):
        return None
    chosen = result.get("chosenCandidates") or []
    tops = result.get("topCandidates") or []
    content = []
    for index, token in enumerate(chosen):
        top = (tops[index].get("candidates") or []) if index < len(tops) else []
        entry = _token_logprob(token)
        entry["top_logprobs"] = [_token_logprob(t) for t in top]
        content.append(entry)
    return {"content": content, "refusal": None}


def _token_logprob(token: JSON) -> JSON:
    text = str(token.get("token", ""))
    return {"token": text, "logprob": float(token.get("logProbability") or 0.0), "bytes": list(text.encode())}


def completion_id(response_id: str) -> str:
    return f"chatcmpl-{response_id or uuid.uuid4().hex}"


def candidate_message(candidate: JSON, response_id: str, max_calls: int | None) -> JSON:
    """One candidate's parts → an OpenAI assistant message (thought parts → reasoning_content)."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[JSON] = []
    index = int(candidate.get("index") or 0)
    for part in candidate_parts(candidate):
        if isinstance(part.get("functionCall"), dict):
            if max_calls is None or len(calls) < max_calls:
                calls.append(tool_call(part, response_id, index, len(calls)))
        elif isinstance(part.get("text"), str) and part["text"]:
            (thoughts if part.get("thought") else texts).append(part["text"])
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    return message


def from_gemini(response: JSON, model: str, *, max_calls: int | None = None) -> ChatCompletion:
    """A whole Gemini answer → an OpenAI chat completion.

    A prompt blocked by Gemini (`promptFeedback.blockReason`, no candidates) is an answer,
    not an error: empty content with finish_reason "content_filter", as OpenAI reports it.
    """
    response_id = str(response.get("responseId") or "")
    choices: list[JSON] = []
    for candidate in response.get("candidates") or []:
        if not isinstance(candidate, dict):
            continue
        message = candidate_message(candidate, response_id, max_calls)
        reason = finish_reason(candidate.get("finishReason"), bool(message.get("tool_calls")))
        choices.append(
            {
                "index": int(candidate.get("index") or 0),
                "message": message,
                "finish_reason": reason,
                "logprobs": to_logprobs(candidate.get("logprobsResult")),
            }
        )
    if not choices:
        feedback = response.get("promptFeedback")
        blocked = isinstance(feedback, dict) and bool(feedback.get("blockReason"))
        reason = "content_filter" if blocked else "stop"
        choices = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ""},
                "finish_reason": reason,
                "logprobs": None,
            }
        ]
    completion: JSON = {
        "id": completion_id(response_id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(response.get("modelVersion") or model),
        "choices": sorted(choices, key=lambda c: int(c["index"])),
    }
    usage = to_usage(response.get("usageMetadata"))
    if usage is not None:
        completion["usage"] = usage
    return cast(ChatCompletion, completion)
