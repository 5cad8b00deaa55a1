"""What the gateway's spans say: their names and attributes, by the OpenTelemetry GenAI
semantic conventions, from what a request left behind. Pure functions over plain values;
nothing here imports OpenTelemetry.

The server span describes the request as the client made it (the public model, the usage
it was charged, the error it was answered with); each client span one upstream attempt
(the deployment's own model id, its outcome). docs/observability.md lists every attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from llm_gateway.core import errors
from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.types import JSON
from llm_gateway.observability.record import error_type

Attributes = dict[str, Any]

CALL = "tracing.call"
"""The `RequestContext.extras` key under which the tracing hook (services/tracing.py) leaves
the request's `Call`."""
ANSWER = "tracing.answer"
"""... and the non-streaming answer, for finish reasons and (opted in) the completion."""
STREAMED = "tracing.streamed"
"""... and, for a stream, the `StreamedAnswer` its usage meter fills."""

OPERATIONS: dict[str, str] = {
    "openai.chat": "chat",
    "simple.chat": "chat",
    "anthropic.messages": "chat",
    "openai.responses": "chat",
    "openai.completions": "text_completion",
    "openai.embeddings": "embeddings",
    "anthropic.count_tokens": "count_tokens",
    "openai.responses.input_tokens": "count_tokens",
}
"""`gen_ai.operation.name` by front door; `count_tokens` is ours (the conventions have none)."""

PROVIDER_NAMES: dict[str, str] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
}
"""`gen_ai.provider.name` by provider `type`; any other type is named as itself (`mock`)."""


class Attempt(Protocol):
    """The fields of `routing.observers.AttemptReport` read here (this layer cannot import it)."""

    @property
    def group(self) -> str: ...
    @property
    def deployment(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def outcome(self) -> str: ...
    @property
    def latency(self) -> float: ...
    @property
    def first_chunk(self) -> float | None: ...
    @property
    def streaming(self) -> bool: ...
    @property
    def hedge(self) -> bool: ...
    @property
    def error(self) -> errors.ProviderError | None: ...


class StreamedAnswer:
    """What a streamed answer said of itself: its id and why the model stopped, the two
    things a non-streaming answer's span takes from the answer. The tracing hook leaves one
    in `ctx.extras[STREAMED]` for a streamed call; the stream's usage meter
    (services/usage.py), which reads every chunk already, feeds it, so a stream pays for
    this only when it is traced, and nothing is parsed twice."""

    __slots__ = ("id", "reasons")

    def __init__(self) -> None:
        self.id: str | None = None
        self.reasons: dict[int, str] = {}
        """Each choice's finish reason by its `index` (a stream of `n` choices ends each apart)."""

    def chat_chunk(self, chunk: Mapping[str, Any]) -> None:
        """A chat (or completions) chunk: the first `id`, each choice's `finish_reason`."""
        if self.id is None:
            answer_id = chunk.get("id")
            if isinstance(answer_id, str):
                self.id = answer_id
        choices = chunk.get("choices")
        if choices:
            for choice in choices:
                reason = choice.get("finish_reason") if isinstance(choice, dict) else None
                if reason:
                    index = choice.get("index")
                    self.reasons[index if isinstance(index, int) else 0] = str(reason)

    def message_event(self, name: str, data: Mapping[str, Any]) -> None:
        """An Anthropic event the meter parsed: the id in `message_start`, the
        `stop_reason` in `message_delta`."""
        if name == "message_start":
            message = data.get("message")
            answer_id = message.get("id") if isinstance(message, dict) else None
            if isinstance(answer_id, str):
                self.id = answer_id
        elif name == "message_delta":
            delta = data.get("delta")
            reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            if reason:
                self.reasons[0] = str(reason)

    def response(self, answer: Mapping[str, Any]) -> None:
        """A Responses stream's terminal event's `response`: the whole answer, read like a
        non-streaming one."""
        if isinstance(answer.get("id"), str):
            self.id = answer["id"]
        self.reasons = dict(enumerate(finish_reasons(answer)))

    def finish_reasons(self) -> list[str]:
        return [self.reasons[index] for index in sorted(self.reasons)]


def span_name(operation: str, model: str | None) -> str:
    """`{gen_ai.operation.name} {gen_ai.request.model}`, or the operation alone."""
    return f"{operation} {model}" if model else operation


def server_attributes(
    ctx: RequestContext | None,
    call: Call | None,
    answer: Any,
    error: BaseException | None,
    status: int,
    providers: Mapping[str, str],
) -> Attributes:
    """The server span's attributes once the request is answered. Never a secret: the key's
    id and name, never its value; the principal's metadata is not read."""
    attributes: Attributes = {"http.response.status_code": status}
    if ctx is not None:
        principal = ctx.principal
        attributes["llm_gateway.request_id"] = ctx.request_id
        attributes["llm_gateway.front_door"] = ctx.dialect
        attributes["llm_gateway.principal"] = principal.kind
        _put(attributes, "llm_gateway.key_id", principal.key_id)
        _put(attributes, "llm_gateway.key_name", principal.name)
        _put(attributes, "llm_gateway.team_id", principal.team_id)
        _put(attributes, "llm_gateway.cache", ctx.cache)
        guardrails = getattr(ctx.extras.get("guardrails"), "results", None)
        if isinstance(guardrails, dict) and guardrails:
            attributes["llm_gateway.guardrails"] = [f"{name}={result}" for name, result in guardrails.items()]
        if ctx.first_chunk_at is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = ctx.first_chunk_at - ctx.started
        _route(attributes, ctx, providers)
        _usage(attributes, ctx)
    if call is not None:
        _put(attributes, "gen_ai.request.model", call.model)
        attributes["gen_ai.request.stream"] = call.stream
        max_tokens = call.body.get("max_completion_tokens") or call.body.get("max_tokens")
        if isinstance(max_tokens, int):
            attributes["gen_ai.request.max_tokens"] = max_tokens
    if answer is not None:
        _answered(attributes, finish_reasons(answer), answer.get("id") if isinstance(answer, dict) else None)
    elif ctx is not None and isinstance(streamed := ctx.extras.get(STREAMED), StreamedAnswer):
        _answered(attributes, streamed.finish_reasons(), streamed.id)
    _put(attributes, "error.type", error_type(error))
    return attributes


def _answered(attributes: Attributes, reasons: list[str], answer_id: Any) -> None:
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = reasons
    if isinstance(answer_id, str):
        attributes["gen_ai.response.id"] = answer_id


def _route(attributes: Attributes, ctx: RequestContext, providers: Mapping[str, str]) -> None:
    route = ctx.route
    if route is None:
        return
    attributes["gen_ai.provider.name"] = providers.get(route.provider, route.provider)
    attributes["gen_ai.response.model"] = route.model
    attributes["llm_gateway.deployment"] = route.deployment
    attributes["llm_gateway.provider"] = route.provider
    attributes["llm_gateway.attempts"] = route.attempts
    attributes["llm_gateway.hedged"] = route.hedged
    _put(attributes, "llm_gateway.fallback", route.fallback)


def _usage(attributes: Attributes, ctx: RequestContext) -> None:
    usage = ctx.usage
    if not usage:
        return
    attributes["gen_ai.usage.input_tokens"] = int(usage.get("prompt_tokens") or 0)
    attributes["gen_ai.usage.output_tokens"] = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    for name, value in (
        ("gen_ai.usage.cache_read.input_tokens", prompt_details.get("cached_tokens")),
        ("gen_ai.usage.cache_write.input_tokens", prompt_details.get("cache_creation_tokens")),
        ("gen_ai.usage.reasoning.output_tokens", completion_details.get("reasoning_tokens")),
    ):
        if value:
            attributes[name] = int(value)
    if ctx.usage_estimated:
        attributes["llm_gateway.usage_estimated"] = True


def attempt_attributes(report: Attempt, operation: str, providers: Mapping[str, str]) -> Attributes:
    """A client span's attributes: one upstream attempt, as the executor reported it."""
    attributes: Attributes = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": providers.get(report.provider, report.provider),
        "gen_ai.request.model": report.model,
        "gen_ai.request.stream": report.streaming,
        "llm_gateway.model": report.group,
        "llm_gateway.deployment": report.deployment,
        "llm_gateway.provider": report.provider,
        "llm_gateway.attempt": report.number,
        "llm_gateway.hedge": report.hedge,
        "llm_gateway.outcome": str(report.outcome),
    }
    if report.first_chunk is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = report.first_chunk
    _put(attributes, "error.type", error_type(report.error))
    if report.error is not None:
        attributes["http.response.status_code"] = report.error.status_code
    return attributes


def server_address(base_url: Any) -> tuple[str, int] | None:
    """`server.address` and `server.port` of a provider's `base_url` (a `SecretUrl`): the host
    and port only, never its userinfo, path or query."""
    if base_url is None or not hasattr(base_url, "get_secret_value"):
        return None
    try:
        parts = urlsplit(base_url.get_secret_value())
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname else None


def finish_reasons(answer: Any) -> list[str]:
    """Why the model stopped: each choice's `finish_reason` (OpenAI shapes), the Anthropic
    `stop_reason`, or a Responses answer's `status` (`incomplete`: the reason it gives, such
    as `max_output_tokens`); empty when the answer says nothing of it."""
    if not isinstance(answer, dict):
        return []
    choices = answer.get("choices")
    if isinstance(choices, list):
        return [str(c["finish_reason"]) for c in choices if isinstance(c, dict) and c.get("finish_reason")]
    if answer.get("object") == "response":
        details = answer.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        status = answer.get("status")
        return [str(reason or status)] if status else []
    reason = answer.get("stop_reason") or answer.get("finish_reason")
    return [str(reason)] if reason else []


def input_messages(body: JSON) -> str | None:
    """`gen_ai.input.messages`: the prompt as the conventions' role-and-parts JSON."""
    messages: list[JSON] = []
    system = body.get("system") or body.get("instructions")
    if system:
        messages.append({"role": "system", "parts": _parts(system)})
    raw = body.get("messages")
    if isinstance(raw, list):
        messages.extend(_message(m) for m in raw if isinstance(m, dict))
    else:
        prompt = body.get("input", body.get("prompt"))
        if isinstance(prompt, list) and all(isinstance(m, dict) and "role" in m for m in prompt):
            messages.extend(_message(m) for m in prompt)
        elif prompt is not None:
            messages.append({"role": "user", "parts": _parts(prompt)})
    return orjson.dumps(messages).decode() if messages else None


def output_messages(answer: Any) -> str | None:
    """`gen_ai.output.messages`: the completion, each choice a message with its finish reason."""
    if not isinstance(answer, dict):
        return None
    messages: list[JSON] = []
    choices = answer.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            part = _message(message) if isinstance(message, dict) else {"parts": _parts(choice.get("text"))}
            messages.append({"role": "assistant", **part, "finish_reason": choice.get("finish_reason")})
    elif isinstance(answer.get("content"), list):
        parts = _parts(answer["content"])
        messages.append({"role": "assistant", "parts": parts, "finish_reason": answer.get("stop_reason")})
    return orjson.dumps(messages).decode() if messages else None


def _message(message: JSON) -> JSON:
    role = message.get("role", "user")
    parts = _parts(message.get("content"))
    for tool_call in message.get("tool_calls") or ():
        if isinstance(tool_call, dict):
            function = tool_call.get("function") or {}
            parts.append(
                {
                    "type": "tool_call",
                    "id": tool_call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments"),
                }
            )
    if role == "tool":
        return {
            "role": "tool",
            "parts": [
                {
                    "type": "tool_call_response",
                    "id": message.get("tool_call_id"),
                    "response": message.get("content"),
                }
            ],
        }
    return {"role": role, "parts": parts}


def _parts(content: Any) -> list[JSON]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if not isinstance(content, list):
        return [{"type": "text", "content": str(content)}]
    parts: list[JSON] = []
    for part in content:
        if isinstance(part, str):
            parts.append({"type": "text", "content": part})
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append({"type": "text", "content": part["text"]})
        elif isinstance(part, dict):
            parts.append({"type": str(part.get("type", "unknown"))})  # images, audio: named, not copied
    return parts


def _put(attributes: Attributes, name: str, value: Any) -> None:
    if value is not None:
        attributes[name] = value
