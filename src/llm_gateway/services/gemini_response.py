"""The gateway's answers → the Gemini front door's: pure functions and one stream state machine.

An OpenAI chat completion becomes a `GenerateContentResponse` (candidates of parts,
`finishReason`, `usageMetadata`, `modelVersion`, `responseId`); a chat chunk stream
becomes Gemini's stream of partial responses (`GeminiStream`): text as it comes, each
function call whole once its arguments are complete (Gemini never streams a call in
pieces), and a last response with the finish reason and the usage. Reasoning is sent as
`thought: true` parts only when the request asked for thoughts (`includeThoughts`).
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_gateway.core.types import JSON

FINISH_REASONS = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}
"""OpenAI finish_reason → Gemini finishReason (a function-calling turn ends with STOP, as
Gemini's own do); anything unknown is OTHER."""


def finish_reason(reason: Any) -> str | None:
    return None if reason is None else FINISH_REASONS.get(str(reason), "OTHER")


def usage_metadata(usage: Any) -> JSON | None:
    """OpenAI usage → usageMetadata: reasoning tokens are `thoughtsTokenCount`, apart from
    `candidatesTokenCount` as Gemini counts them; cached prompt tokens are
    `cachedContentTokenCount`."""
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    thoughts = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    metadata: JSON = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": max(completion - thoughts, 0),
        "totalTokenCount": int(usage.get("total_tokens") or prompt + completion),
    }
    if cached:
        metadata["cachedContentTokenCount"] = cached
    if thoughts:
        metadata["thoughtsTokenCount"] = thoughts
    return metadata


def function_call_part(call: JSON) -> JSON:
    """An OpenAI tool call → a `functionCall` part; its id goes back and forth as the call's `id`."""
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        args = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        args = {"arguments": arguments}  # a model's malformed JSON, kept rather than lost
    part: JSON = {
        "name": str(function.get("name") or ""),
        "args": args if isinstance(args, dict) else {"value": args},
    }
    if call.get("id"):
        part["id"] = str(call["id"])
    return {"functionCall": part}


def message_parts(message: JSON, thoughts: bool) -> list[JSON]:
    parts: list[JSON] = []
    reasoning = message.get("reasoning_content")
    if thoughts and isinstance(reasoning, str) and reasoning:
        parts.append({"text": reasoning, "thought": True})
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append({"text": content})
    elif isinstance(content, list):
        parts.extend(
            {"text": p["text"]} for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    parts.extend(
        function_call_part(call) for call in message.get("tool_calls") or () if isinstance(call, dict)
    )
    return parts


def to_generate_response(completion: Any, model: str, *, thoughts: bool = False) -> JSON:
    """A whole chat completion → a `GenerateContentResponse`."""
    candidates = []
    for choice in completion.get("choices") or ():
        candidate: JSON = {
            "content": {"parts": message_parts(choice.get("message") or {}, thoughts), "role": "model"},
            "index": int(choice.get("index") or 0),
        }
        reason = finish_reason(choice.get("finish_reason"))
        if reason is not None:
            candidate["finishReason"] = reason
        candidates.append(candidate)
    response: JSON = {"candidates": candidates}
    metadata = usage_metadata(completion.get("usage"))
    if metadata is not None:
        response["usageMetadata"] = metadata
    response["modelVersion"] = str(completion.get("model") or model)
    response["responseId"] = str(completion.get("id") or "")
    return response


class GeminiStream:
    """Chat chunks → Gemini partial responses. `feed` each chunk, then `finish` once."""

    def __init__(self, model: str, *, thoughts: bool = False) -> None:
        self.model = model
        self.thoughts = thoughts
        self.response_id = ""
        self._calls: dict[int, dict[int, JSON]] = {}
        self._finish: dict[int, str] = {}
        self._usage: JSON | None = None

    def feed(self, chunk: Any) -> list[JSON]:
        self.response_id = self.response_id or str(chunk.get("id") or "")
        self.model = str(chunk.get("model") or self.model)
        if isinstance(chunk.get("usage"), dict):
            self._usage = usage_metadata(chunk["usage"])
        candidates = []
        for choice in chunk.get("choices") or ():
            index = int(choice.get("index") or 0)
            parts = self._delta_parts(choice.get("delta") or {}, index)
            if choice.get("finish_reason") is not None:
                self._finish[index] = str(choice["finish_reason"])
            if parts:
                candidates.append({"content": {"parts": parts, "role": "model"}, "index": index})
        return [self._response(candidates)] if candidates else []

    def _delta_parts(self, delta: JSON, index: int) -> list[JSON]:
        parts: list[JSON] = []
        reasoning = delta.get("reasoning_content")
        if self.thoughts and isinstance(reasoning, str) and reasoning:
            parts.append({"text": reasoning, "thought": True})
        if isinstance(delta.get("content"), str) and delta["content"]:
            parts.append({"text": delta["content"]})
        calls = self._calls.setdefault(index, {})
        for call in delta.get("tool_calls") or ():
            slot = calls.setdefault(int(call.get("index") or 0), {"function": {"name": "", "arguments": ""}})
            function = call.get("function") or {}
            if call.get("id"):
                slot["id"] = call["id"]
            slot["function"]["name"] += function.get("name") or ""
            slot["function"]["arguments"] += function.get("arguments") or ""
        return parts

    def finish(self) -> list[JSON]:
        """The last response: every function call, whole, the finish reasons and the usage."""
        indexes = sorted(set(self._calls) | set(self._finish)) or [0]
        candidates = []
        for index in indexes:
            calls = [function_call_part(c) for _, c in sorted(self._calls.get(index, {}).items())]
            candidate: JSON = {"content": {"parts": calls, "role": "model"}, "index": index}
            candidate["finishReason"] = finish_reason(self._finish.get(index, "stop"))
            candidates.append(candidate)
        return [self._response(candidates, last=True)]

    def _response(self, candidates: list[JSON], *, last: bool = False) -> JSON:
        response: JSON = {"candidates": candidates}
        if last and self._usage is not None:
            response["usageMetadata"] = self._usage
        response["modelVersion"] = self.model
        response["responseId"] = self.response_id
        return response


def embedding_values(response: Any) -> list[JSON]:
    """An OpenAI embeddings response → Gemini `ContentEmbedding`s, in input order."""
    data = sorted(
        (d for d in response.get("data") or () if isinstance(d, dict)), key=lambda d: d.get("index", 0)
    )
    return [{"values": d.get("embedding") or []} for d in data]
