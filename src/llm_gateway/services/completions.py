"""`completions`: OpenAI's legacy `/v1/completions`, native or translated onto chat per deployment.

A deployment whose provider serves the legacy API itself (`Capability.COMPLETIONS`: the
`openai` type, i.e. OpenAI-compatible servers) gets the body as sent but for `model`, and
its answer or chunks come back as they are. Any other provider gets a chat request (the
prompt as one user message) and its answer is rendered as a `text_completion`. Fields
with no chat equivalent (`suffix`, `echo`, `logprobs`, `best_of` > 1, `n` > 1, several
prompts, token-id prompts) are refused for those deployments, naming them, rather than
silently dropped. Deciding per deployment keeps failover working across mixed groups.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON, ChatChunk, ChatCompletion, ChatRequest, Usage
from llm_gateway.providers.base import native_completions
from llm_gateway.routing.deployments import Target
from llm_gateway.services.service import Attempt, Service, StreamAttempt
from llm_gateway.services.usage import UsageStream, chat_completion_usage, with_stream_usage

DEFAULT_MAX_TOKENS = 16
"""The legacy API's own default for `max_tokens`, kept when translating (chat has none)."""
NOT_ON_CHAT = ("suffix", "echo", "logprobs", "best_of", "n")
"""Asked only when they change the answer: `echo: false`, `logprobs: null`, `best_of: 1` and
`n: 1` are the defaults and translate to nothing."""
OBJECT = "text_completion"


def check_completion_request(body: JSON) -> None:
    """What the gateway itself relies on before routing; the rest is each upstream's call."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("'model' must be a string", param="model")
    if body.get("prompt") is None:
        raise InvalidRequest(
            "'prompt' is a required property", param="prompt", code="missing_required_parameter"
        )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")


def _asks(body: JSON, key: str) -> bool:
    value = body.get(key)
    if key in ("best_of", "n"):
        return value is not None and value != 1
    return value is not None and value is not False


def prompt_text(prompt: Any) -> str:
    """The one prompt, as text: a string, or a list holding one string."""
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if isinstance(prompt, str):
        return prompt
    raise InvalidRequest(
        "'prompt' must be one string for this model (it has no legacy completions API: "
        "several prompts and token-id prompts cannot be translated to chat)",
        param="prompt",
        code="unsupported_parameter",
    )


def to_chat(body: JSON) -> ChatRequest:
    """The chat request for a legacy completions body: the prompt as one user message."""
    asked = [key for key in NOT_ON_CHAT if _asks(body, key)]
    if asked:
        names = ", ".join(f"'{key}'" for key in asked)
        raise InvalidRequest(
            f"{names} cannot be served by this model: it has no legacy completions API, and "
            "chat has no equivalent",
            param=asked[0],
            code="unsupported_parameter",
        )
    request = {k: v for k, v in body.items() if k not in ("prompt", *NOT_ON_CHAT)}
    request["messages"] = [{"role": "user", "content": prompt_text(body.get("prompt"))}]
    request.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    if request["max_tokens"] is None:
        request["max_tokens"] = DEFAULT_MAX_TOKENS
    return cast(ChatRequest, request)


def message_text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def to_text_completion(completion: ChatCompletion) -> JSON:
    """A chat completion as a `text_completion` (each choice's message text)."""
    choices = [
        {
            "text": message_text(choice.get("message")),
            "index": choice.get("index", index),
            "logprobs": None,
            "finish_reason": choice.get("finish_reason"),
        }
        for index, choice in enumerate(completion.get("choices") or [])
    ]
    result: JSON = {
        "id": completion.get("id") or "cmpl-gateway",
        "object": OBJECT,
        "created": completion.get("created", 0),
        "model": completion.get("model", ""),
        "choices": choices,
    }
    if completion.get("usage") is not None:
        result["usage"] = completion["usage"]
    return result


def to_text_chunk(chunk: ChatChunk) -> JSON | None:
    """A chat chunk as a `text_completion` chunk; None for one that carries nothing (the
    role-only first chunk, tool-call deltas)."""
    choices = []
    for index, choice in enumerate(chunk.get("choices") or []):
        delta = choice.get("delta") or {}
        text = delta.get("content") if isinstance(delta.get("content"), str) else ""
        finish = choice.get("finish_reason")
        if text or finish:
            choices.append(
                {"text": text, "index": choice.get("index", index), "logprobs": None, "finish_reason": finish}
            )
    usage = chunk.get("usage")
    if not choices and not usage:
        return None
    result: JSON = {
        "id": chunk.get("id") or "cmpl-gateway",
        "object": OBJECT,
        "created": chunk.get("created", 0),
        "model": chunk.get("model", ""),
        "choices": choices,
    }
    if usage:
        result["usage"] = usage
    return result


async def text_chunks(chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[JSON]:
    """A chat stream as text_completion chunks; closing this closes the upstream stream."""
    try:
        async for chunk in chunks:
            translated = to_text_chunk(chunk)
            if translated is not None:
                yield translated
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


class CompletionsService(Service):
    def __init__(self, *, metered: bool = True) -> None:
        self._metered = metered

    def attempt(self, call: Call) -> Attempt:
        body = call.body

        async def attempt(target: Target) -> JSON:
            provider = native_completions(target.provider)
            if provider is not None:
                return await provider.completions(body, target.model, timeout=target.timeout)
            completion = await target.provider.complete(to_chat(body), target.model, timeout=target.timeout)
            return to_text_completion(completion)

        return attempt

    def stream_attempt(self, call: Call) -> StreamAttempt:
        body = call.body
        if self._metered:
            body = cast(JSON, with_stream_usage(cast(ChatRequest, body)))

        def attempt(target: Target) -> AsyncIterator[JSON]:
            provider = native_completions(target.provider)
            if provider is not None:
                return provider.completions_stream(body, target.model, timeout=target.timeout)
            chunks = target.provider.stream(to_chat(body), target.model, timeout=target.timeout)
            return text_chunks(chunks)

        return attempt

    def usage(self, value: Any) -> Usage | None:
        return chat_completion_usage(value)

    def client_stream(
        self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any], upstream_model: str
    ) -> AsyncIterator[Any]:
        return UsageStream(ctx, call, chunks, upstream_model) if self._metered else chunks
