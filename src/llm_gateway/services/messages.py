"""`messages` and `count_tokens`: the `/v1/messages` front door, native or translated per deployment.

The model resolves to a group like any chat request, and the executor picks a deployment.
If its provider speaks the Messages API itself (`Capability.MESSAGES`), the body goes
through untouched but for `model` and the answer or event stream comes back as-is.
Otherwise the body is translated to a chat request (once, on first need), sent to the
provider like `/v1/chat/completions` would, and the answer translated back into an
Anthropic Message or event stream. Deciding per deployment keeps failover working across
mixed groups.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON, ChatChunk, ChatRequest, Usage
from llm_gateway.providers.anthropic.events import MessageEvents
from llm_gateway.providers.anthropic.frontdoor import estimate_input_tokens, to_chat_request, to_message
from llm_gateway.providers.base import SSEEvent, native_messages
from llm_gateway.routing.deployments import Group, ModelCatalog, Target
from llm_gateway.services.hooks import Meter
from llm_gateway.services.service import Attempt, Service, StreamAttempt
from llm_gateway.services.usage import EventMeter, message_usage


class MessagesRequest:
    """An Anthropic Messages body, with its chat translation made lazily and kept."""

    def __init__(self, call: Call) -> None:
        self.body = call.body
        self.model = call.model
        self.beta: str | None = call.options.get("beta")
        self.version: str | None = call.options.get("version")
        self._chat: ChatRequest | None = None

    @property
    def chat(self) -> ChatRequest:
        if self._chat is None:
            self._chat = to_chat_request(self.body)
        return self._chat


class MessagesService(Service):
    def attempt(self, call: Call) -> Attempt:
        request = MessagesRequest(call)

        async def attempt(target: Target) -> JSON:
            provider = native_messages(target.provider)
            if provider is not None:
                return await provider.messages(
                    request.body,
                    target.model,
                    timeout=target.timeout,
                    beta=request.beta,
                    version=request.version,
                )
            completion = await target.provider.complete(request.chat, target.model, timeout=target.timeout)
            return to_message(completion)

        return attempt

    def stream_attempt(self, call: Call) -> StreamAttempt:
        request = MessagesRequest(call)

        def attempt(target: Target) -> AsyncIterator[SSEEvent]:
            provider = native_messages(target.provider)
            if provider is not None:
                return provider.messages_stream(
                    request.body,
                    target.model,
                    timeout=target.timeout,
                    beta=request.beta,
                    version=request.version,
                )
            chunks = target.provider.stream(request.chat, target.model, timeout=target.timeout)
            return translated_events(chunks, model=request.model or target.model)

        return attempt

    def usage(self, value: Any) -> Usage | None:
        return message_usage(value)

    def meter(self, ctx: RequestContext) -> Meter:
        return EventMeter(ctx)


class CountTokensService(Service):
    """Forwarded to the model's native deployments only; with none, estimated here without
    routing, so an estimate never counts as an upstream attempt (`attempts` is 0) and the
    count for a model never depends on which deployment was picked."""

    def group(self, catalog: ModelCatalog, call: Call) -> Group:
        try:
            return catalog.resolve(call.model, Capability.MESSAGES)
        except InvalidRequest:  # no native deployment: answered by `local_answer`
            return catalog.resolve(call.model)

    def attempt(self, call: Call) -> Attempt:
        request = MessagesRequest(call)

        async def attempt(target: Target) -> JSON:
            provider = native_messages(target.provider)
            if provider is None:  # the group holds native deployments only
                raise TypeError(f"provider {target.provider.name!r} cannot count tokens natively")
            return await provider.count_tokens(
                request.body, target.model, timeout=target.timeout, beta=request.beta, version=request.version
            )

        return attempt

    def local_answer(self, call: Call, group: Group) -> Any | None:
        if group.requires is Capability.MESSAGES:
            return None
        return {"input_tokens": estimate_input_tokens(call.body)}


async def translated_events(chunks: AsyncIterator[ChatChunk], *, model: str) -> AsyncIterator[SSEEvent]:
    """A chat chunk stream as Anthropic events; closing this closes the upstream stream."""
    machine = MessageEvents(message_id=f"msg_{uuid.uuid4().hex[:24]}", model=model)
    try:
        async for chunk in chunks:
            for name, data in machine.feed(chunk):
                yield name, orjson.dumps(data)
        for name, data in machine.finish():
            yield name, orjson.dumps(data)
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
