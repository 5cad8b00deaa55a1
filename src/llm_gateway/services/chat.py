"""`chat`: OpenAI chat completions on any provider (also the `/api/chat` front door's).

When usage is metered (some hook reads it: a non-empty hook chain), a stream always asks
its upstream for usage and the client gets the usage chunk only when it asked for it too
(services/usage.py `UsageStream`); unmetered, the stream passes through untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.types import ChatCompletion, ChatRequest, Usage
from llm_gateway.routing.deployments import Group, Target
from llm_gateway.services.service import Attempt, Service, StreamAttempt
from llm_gateway.services.tokens import count_prompt_tokens
from llm_gateway.services.usage import UsageStream, chat_completion_usage, with_stream_usage


class ChatService(Service):
    def __init__(self, *, metered: bool = True) -> None:
        self._metered = metered

    def attempt(self, call: Call) -> Attempt:
        request = cast(ChatRequest, call.body)

        async def attempt(target: Target) -> ChatCompletion:
            return await target.provider.complete(request, target.model, timeout=target.timeout)

        return attempt

    def stream_attempt(self, call: Call) -> StreamAttempt:
        request = cast(ChatRequest, call.body)
        if self._metered:
            request = with_stream_usage(request)

        def attempt(target: Target) -> Any:
            return target.provider.stream(request, target.model, timeout=target.timeout)

        return attempt

    def usage(self, value: Any) -> Usage | None:
        return chat_completion_usage(value)

    def client_stream(
        self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any], upstream_model: str
    ) -> AsyncIterator[Any]:
        return UsageStream(ctx, call, chunks, upstream_model) if self._metered else chunks


class ChatTokensService(Service):
    """A chat request's prompt tokens, counted here offline with the model's resolved
    deployment's tokenizer (exact for OpenAI models, an estimate for others), never routed
    (`attempts` is 0): the Gemini front door's countTokens."""

    def local_answer(self, call: Call, group: Group) -> Any | None:
        model = group.targets[0].model if group.targets else group.name
        return {"prompt_tokens": count_prompt_tokens(Operation.CHAT, call.body, model)}
