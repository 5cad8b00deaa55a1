"""One `/v1/messages` request's orchestration: native pass-through or translation, per deployment.

The model resolves to a group like any chat request, and the executor picks a deployment.
If its provider speaks the Messages API itself (`NativeMessages`), the body goes through
untouched but for `model` and the answer or event stream comes back as-is. Otherwise the
body is translated to a chat request (once, on first need), sent to the provider like
`/v1/chat/completions` would, and the answer translated back into an Anthropic Message or
event stream. Deciding per deployment keeps failover working across mixed groups.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import orjson

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON, ChatChunk, ChatRequest
from llm_gateway.providers.anthropic.events import MessageEvents
from llm_gateway.providers.anthropic.frontdoor import estimate_input_tokens, to_chat_request, to_message
from llm_gateway.providers.base import SSEEvent, native_messages
from llm_gateway.routing.deployments import Group, Target
from llm_gateway.routing.executor import Served
from llm_gateway.services.chat import ChatService


class MessagesRequest:
    """An Anthropic Messages body, with its chat translation made lazily and kept."""

    def __init__(self, body: JSON, beta: str | None = None) -> None:
        self.body = body
        self.beta = beta
        self._chat: ChatRequest | None = None

    @property
    def model(self) -> str | None:
        model = self.body.get("model")
        if model is not None and not isinstance(model, str):
            raise InvalidRequest("model: Input should be a valid string", param="model")
        return model

    @property
    def chat(self) -> ChatRequest:
        if self._chat is None:
            self._chat = to_chat_request(self.body)
        return self._chat


class MessagesService:
    def __init__(self, chat: ChatService) -> None:
        self._chat = chat

    def resolve(self, request: MessagesRequest) -> Group:
        probe: ChatRequest = {"model": request.model} if request.model else {}
        return self._chat.resolve(probe)

    async def create(self, request: MessagesRequest, *, retries: bool = True) -> Served[JSON]:
        async def attempt(target: Target) -> JSON:
            native = native_messages(target.provider)
            if native is not None:
                return await native.messages(
                    request.body, target.model, timeout=target.timeout, beta=request.beta
                )
            completion = await target.provider.complete(request.chat, target.model, timeout=target.timeout)
            return to_message(completion)

        return await self._chat.executor.call(self.resolve(request), attempt, retries=retries)

    async def stream(
        self, request: MessagesRequest, *, retries: bool = True
    ) -> Served[AsyncIterator[SSEEvent]]:
        def attempt(target: Target) -> AsyncIterator[SSEEvent]:
            native = native_messages(target.provider)
            if native is not None:
                return native.messages_stream(
                    request.body, target.model, timeout=target.timeout, beta=request.beta
                )
            chunks = target.provider.stream(request.chat, target.model, timeout=target.timeout)
            return translated_events(chunks, model=request.model or target.model)

        return await self._chat.executor.open_stream(self.resolve(request), attempt, retries=retries)

    async def count_tokens(self, request: MessagesRequest, *, retries: bool = True) -> Served[JSON]:
        """Forwarded to a native deployment; otherwise estimated here, without routing, so
        the estimate never counts as an upstream attempt (`attempts` is 0)."""
        group = self.resolve(request)
        if not any(native_messages(target.provider) is not None for target in group.targets):
            return Served({"input_tokens": estimate_input_tokens(request.body)}, group.targets[0], attempts=0)

        async def attempt(target: Target) -> JSON:
            native = native_messages(target.provider)
            if native is not None:
                return await native.count_tokens(
                    request.body, target.model, timeout=target.timeout, beta=request.beta
                )
            return {"input_tokens": estimate_input_tokens(request.body)}

        return await self._chat.executor.call(group, attempt, retries=retries)


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
