"""Gemini's streamed answer → OpenAI chat chunks: a small pure state machine.

Each SSE event of `streamGenerateContent?alt=sse` is a whole `GenerateContentResponse`
holding the next slice of each candidate: text deltas, complete function calls (Gemini
does not split their arguments), a finishReason and cumulative usageMetadata. Gemini may
repeat finishReason on several events, so finish chunks are only emitted by `finish()`,
once the upstream stream has ended.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from llm_gateway.core.types import JSON, ChatChunk
from llm_gateway.providers.gemini.response import (
    candidate_parts,
    completion_id,
    finish_reason,
    to_logprobs,
    to_usage,
    tool_call,
)


@dataclass(slots=True)
class _Choice:
    calls: int = 0
    reason: str | None = None


class GeminiStream:
    """Feed it each upstream event, then call `finish()` when the upstream stream ends."""

    def __init__(self, model: str, *, include_usage: bool = False, max_calls: int | None = None) -> None:
        self._model = model
        self._include_usage = include_usage
        self._max_calls = max_calls
        self._created = int(time.time())
        self._response_id: str | None = None
        self._id: str | None = None
        self._choices: dict[int, _Choice] = {}
        self._usage: Any = None
        self._blocked = False

    @property
    def finished(self) -> bool:
        """Whether upstream said the answer is complete (a finishReason or a blocked prompt)."""
        return self._blocked or any(c.reason for c in self._choices.values())

    def feed(self, event: JSON) -> list[ChatChunk]:
        if self._response_id is None:
            self._response_id = str(event.get("responseId") or "")
            self._id = completion_id(self._response_id)
        if event.get("modelVersion"):
            self._model = str(event["modelVersion"])
        if event.get("usageMetadata"):
            self._usage = event["usageMetadata"]
        feedback = event.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            self._blocked = True
        chunks: list[ChatChunk] = []
        for candidate in event.get("candidates") or []:
            if isinstance(candidate, dict):
                chunks.extend(self._candidate(candidate))
        return chunks

    def _candidate(self, candidate: JSON) -> list[ChatChunk]:
        index = int(candidate.get("index") or 0)
        chunks = []
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _Choice()
            chunks.append(self._chunk(index, {"role": "assistant", "content": ""}))
        logprobs = to_logprobs(candidate.get("logprobsResult"))
        for part in candidate_parts(candidate):
            delta = self._delta(part, index, state)
            if delta:
                chunks.append(self._chunk(index, delta, logprobs=logprobs))
                logprobs = None
        if candidate.get("finishReason"):
            state.reason = str(candidate["finishReason"])
        return chunks

    def _delta(self, part: JSON, index: int, state: _Choice) -> JSON | None:
        if isinstance(part.get("functionCall"), dict):
            if self._max_calls is not None and state.calls >= self._max_calls:
                return None
            call = tool_call(part, self._response_id or "", index, state.calls)
            state.calls += 1
            return {"tool_calls": [{"index": state.calls - 1, **call}]}
        text = part.get("text")
        if not isinstance(text, str) or not text:
            return None
        return {"reasoning_content": text} if part.get("thought") else {"content": text}

    def finish(self) -> list[ChatChunk]:
        """The closing chunks: one finish chunk per choice, then usage if it was asked for."""
        chunks: list[ChatChunk] = []
        if not self._choices:
            chunks.append(self._chunk(0, {"role": "assistant", "content": ""}))
            reason = "content_filter" if self._blocked else "stop"
            chunks.append(self._chunk(0, {}, finish=reason))
        for index in sorted(self._choices):
            state = self._choices[index]
            chunks.append(self._chunk(index, {}, finish=finish_reason(state.reason, state.calls > 0)))
        usage = to_usage(self._usage)
        if self._include_usage and usage is not None:
            final = self._chunk(0, {})
            final["choices"] = []
            final["usage"] = usage
            chunks.append(final)
        return chunks

    def _chunk(
        self, index: int, delta: JSON, *, finish: str | None = None, logprobs: JSON | None = None
    ) -> ChatChunk:
        if self._id is None:
            self._id = completion_id("")
        chunk: JSON = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}],
        }
        return cast(ChatChunk, chunk)
