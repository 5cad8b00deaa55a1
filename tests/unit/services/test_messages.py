"""`MessagesService`: native pass-through for providers that speak the Messages API,
translation for the rest, decided per deployment; with in-process stub providers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import pytest

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.config import GatewayConfig, ProviderSettings
from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON, ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers.base import Provider, SSEEvent, native_messages
from llm_gateway.providers.transport import HttpClient
from llm_gateway.routing.deployments import ModelCatalog
from llm_gateway.routing.executor import Executor
from llm_gateway.services.chat import ChatService
from llm_gateway.services.messages import MessagesRequest, MessagesService

BODY: JSON = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


class ChatStub(Provider):
    """An OpenAI-format provider that records what it was asked."""

    settings_model = ProviderSettings

    def __init__(self, name: str) -> None:
        settings = ProviderSettings(type="stub")
        super().__init__(name, settings, HttpClient(name, settings))
        self.requests: list[tuple[ChatRequest, str]] = []
        self.closed = False

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        self.requests.append((request, model))
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }

    async def stream(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        self.requests.append((request, model))
        base: Any = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model}
        first: Any = {"index": 0, "delta": {"role": "assistant", "content": "hel"}, "finish_reason": None}
        last: Any = {"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}
        try:
            yield cast(ChatChunk, {**base, "choices": [first]})
            yield cast(ChatChunk, {**base, "choices": [last]})
        finally:
            self.closed = True


class NativeStub(ChatStub):
    """A provider that also speaks the Messages API itself."""

    capabilities = frozenset({Capability.CHAT, Capability.MESSAGES})

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.native: list[tuple[str, JSON, str, str | None]] = []

    async def messages(
        self, body: JSON, model: str, *, timeout: float | None = None, beta: str | None = None
    ) -> JSON:
        self.native.append(("messages", body, model, beta))
        return {"type": "message", "model": model, "content": [{"type": "text", "text": "native"}]}

    async def messages_stream(
        self, body: JSON, model: str, *, timeout: float | None = None, beta: str | None = None
    ) -> AsyncIterator[SSEEvent]:
        self.native.append(("stream", body, model, beta))
        yield "message_start", b'{"type":"message_start"}'
        yield "message_stop", b'{"type":"message_stop"}'

    async def count_tokens(
        self, body: JSON, model: str, *, timeout: float | None = None, beta: str | None = None
    ) -> JSON:
        self.native.append(("count", body, model, beta))
        return {"input_tokens": 42}


def service(*providers: ChatStub) -> MessagesService:
    config = GatewayConfig.model_validate(
        {
            "providers": {p.name: {"type": "stub"} for p in providers},
            "models": {
                p.name: {"deployments": [{"provider": p.name, "model": f"up-{p.name}"}]} for p in providers
            },
        }
    )
    catalog = ModelCatalog(config, {p.name: p for p in providers})
    return MessagesService(ChatService(catalog, Executor()))


def test_the_native_stub_is_recognised() -> None:
    native = NativeStub("n")
    assert native_messages(native) is native
    assert native_messages(ChatStub("c")) is None


async def test_native_create_passes_the_body_through() -> None:
    native = NativeStub("claude")
    body = {**BODY, "model": "claude", "anything": {"kept": True}}
    served = await service(native).create(MessagesRequest(body, beta="b1"))
    assert served.value["content"] == [{"type": "text", "text": "native"}]
    assert native.native == [("messages", body, "up-claude", "b1")]
    assert native.requests == []


async def test_a_model_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        await service(ChatStub("gpt")).create(MessagesRequest({**BODY, "model": 7}))
    assert caught.value.param == "model"


async def test_translated_create() -> None:
    chat = ChatStub("gpt")
    served = await service(chat).create(MessagesRequest({**BODY, "model": "gpt"}))
    assert served.value["content"] == [{"type": "text", "text": "hello"}]
    assert served.value["usage"]["input_tokens"] == 3
    request, model = chat.requests[0]
    assert model == "up-gpt"
    assert request["messages"] == [{"role": "user", "content": "hi"}]


async def test_translation_is_only_made_when_needed() -> None:
    native, chat = NativeStub("claude"), ChatStub("gpt")
    body = {**BODY, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
    messages = service(native, chat)
    await messages.create(MessagesRequest({**body, "model": "claude"}))
    with pytest.raises(InvalidRequest):
        await messages.create(MessagesRequest({**body, "model": "gpt"}))
    assert chat.requests == []


async def test_native_stream_is_relayed() -> None:
    native = NativeStub("claude")
    served = await service(native).stream(MessagesRequest({**BODY, "model": "claude", "stream": True}))
    events = [event async for event in served.value]
    assert events == [
        ("message_start", b'{"type":"message_start"}'),
        ("message_stop", b'{"type":"message_stop"}'),
    ]


async def test_translated_stream_and_its_closing() -> None:
    chat = ChatStub("gpt")
    served = await service(chat).stream(MessagesRequest({**BODY, "model": "gpt", "stream": True}))
    events = [(name, orjson.loads(data)) async for name, data in served.value]
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert chat.requests[0][0]["stream_options"] == {"include_usage": True}
    assert chat.closed

    early = ChatStub("gpt")
    served = await service(early).stream(MessagesRequest({**BODY, "model": "gpt", "stream": True}))
    await anext(served.value)
    await served.value.aclose()  # type: ignore[attr-defined]
    assert early.closed


async def test_count_tokens_native_or_estimated() -> None:
    native, chat = NativeStub("claude"), ChatStub("gpt")
    messages = service(native, chat)
    body = {"messages": [{"role": "user", "content": "x" * 40}]}
    assert (await messages.count_tokens(MessagesRequest({**body, "model": "claude"}))).value == {
        "input_tokens": 42
    }
    assert (await messages.count_tokens(MessagesRequest({**body, "model": "gpt"}))).value == {
        "input_tokens": 13
    }
    assert chat.requests == []
