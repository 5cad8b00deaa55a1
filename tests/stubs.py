"""In-process stand-ins for upstreams and hooks, and the helpers that wire them into targets,
groups, catalogs, configs and pipelines: no network, no server, no sleeping.

`StubProvider` chats from a script and records every request it gets; `EmbeddingStub` and
`NativeStub` declare the embeddings and native Messages capabilities (capabilities are
class data, so each is a subclass). A script is plain attributes, changed at any time:

- `errors`: raised one per call, in order, before answering (a failed attempt);
- `chunks` / `events`: what a stream yields; an exception among them is raised at its place
  (a stream that fails after its first chunk);
- `hang`: calls wait until cancelled, setting `waiting` once they do.

Streams count `opened`, `finished` (read to their end) and `closed` (their `finally` ran), so
a test can tell a stream read to its end from one closed early, and see that none leaks.
`RecordingHook` records every hook call with the usage and error it saw.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.config import BreakerSettings, GatewayConfig, ProviderSettings, RoutingSettings
from llm_gateway.core.context import OPEN, Call, RequestContext
from llm_gateway.core.loader import build_config
from llm_gateway.core.types import JSON, ChatChunk, ChatCompletion, ChatRequest, Usage, make_usage
from llm_gateway.providers.base import Provider, SSEEvent
from llm_gateway.providers.registry import settings_model
from llm_gateway.providers.transport import HttpClient
from llm_gateway.routing.deployments import Group, ModelCatalog, Target
from llm_gateway.routing.executor import Executor
from llm_gateway.services.hooks import Answer, Hook, HookChain
from llm_gateway.services.pipeline import Pipeline
from tests.gateway import UPSTREAM_CLIENT

CHAT_USAGE: Usage = make_usage(3, 2)
"""What every stub chat answer costs (sent in a stream's last chunk when asked for usage)."""
EMBEDDING_USAGE = {"prompt_tokens": 2, "total_tokens": 2}
VECTOR = [0.5, -1.0, 0.1]
NATIVE_USAGE: JSON = {"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 4}


@dataclass(frozen=True, slots=True)
class Request:
    """One call a stub received: `kind` is the provider method's name."""

    kind: str
    body: JSON
    model: str
    beta: str | None = None


def completion(text: str, model: str, usage: Usage = CHAT_USAGE) -> ChatCompletion:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": usage,
    }


def chunk(
    model: str, delta: JSON | None = None, finish: str | None = None, usage: Usage | None = None
) -> ChatChunk:
    """One chat chunk; with no `delta`, a usage-only chunk (no choices), as OpenAI ends with."""
    value: Any = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": model}
    value["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage is not None:
        value["usage"] = usage
    return cast(ChatChunk, value)


def reply_chunks(text: str, model: str, include_usage: bool) -> list[ChatChunk]:
    """`text` in two chunks (the role with its first half, then the rest and `stop`), then
    the usage when the request asked for it."""
    half = len(text) // 2
    chunks = [
        chunk(model, {"role": "assistant", "content": text[:half]}),
        chunk(model, {"content": text[half:]}, finish="stop"),
    ]
    return [*chunks, chunk(model, usage=CHAT_USAGE)] if include_usage else chunks


def event(name: str, data: JSON) -> SSEEvent:
    return name, orjson.dumps({"type": name, **data})


START_USAGE: JSON = {"input_tokens": 5, "cache_read_input_tokens": 4, "output_tokens": 1}
NATIVE_EVENTS: list[SSEEvent] = [
    event("message_start", {"message": {"model": "native", "usage": START_USAGE}}),
    event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "native"}}),
    event("content_block_stop", {"index": 0}),
    event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
    event("message_stop", {}),
]
"""A native Messages stream costing `NATIVE_USAGE`: input counted at the start, output at the end."""


class StubProvider(Provider):
    """A chat-only provider answering `reply`, scripted through its attributes (module docstring)."""

    settings_model = ProviderSettings

    def __init__(
        self,
        name: str = "stub",
        *,
        reply: str = "hello",
        errors: Iterable[BaseException] = (),
        chunks: Sequence[Any] | None = None,
    ) -> None:
        settings = ProviderSettings(type="stub")
        super().__init__(name, settings, HttpClient(name, settings, client=UPSTREAM_CLIENT))
        self.reply = reply
        self.errors = list(errors)
        self.chunks = chunks
        """None: the reply in two chunks, then the usage if the request asks for it."""
        self.hang = False
        self.waiting = asyncio.Event()
        self.requests: list[Request] = []
        self.cancelled = 0
        self.opened = self.finished = self.closed = 0

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        await self._called("complete", cast(JSON, request), model)
        return completion(self.reply, model)

    def stream(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        chunks = self.chunks if self.chunks is not None else reply_chunks(self.reply, model, include_usage)
        return self._relay("stream", cast(JSON, request), model, None, chunks)

    async def _called(self, kind: str, body: JSON, model: str, beta: str | None = None) -> None:
        self.requests.append(Request(kind, body, model, beta))
        if self.errors:
            raise self.errors.pop(0)
        if self.hang:
            self.waiting.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise

    async def _relay(
        self, kind: str, body: JSON, model: str, beta: str | None, items: Sequence[Any]
    ) -> AsyncIterator[Any]:
        self.opened += 1
        try:
            await self._called(kind, body, model, beta)
            for item in items:
                if isinstance(item, BaseException):
                    raise item
                yield item
            self.finished += 1
        finally:
            self.closed += 1


class EmbeddingStub(StubProvider):
    """Also embeds, answering floats whatever `encoding_format` says (as Gemini does)."""

    capabilities = frozenset({Capability.CHAT, Capability.EMBEDDINGS})

    async def embed(
        self, request: dict[str, Any], model: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        await self._called("embed", request, model)
        data = [{"object": "embedding", "index": 0, "embedding": list(VECTOR)}]
        return {"object": "list", "data": data, "model": model, "usage": dict(EMBEDDING_USAGE)}


class NativeStub(StubProvider):
    """Also speaks the Messages API itself: `messages`, `messages_stream` (`events`), `count_tokens`."""

    capabilities = frozenset({Capability.CHAT, Capability.MESSAGES})

    def __init__(self, name: str = "native", *, events: Sequence[Any] | None = None, **script: Any) -> None:
        super().__init__(name, **script)
        self.events = list(NATIVE_EVENTS if events is None else events)

    async def messages(
        self,
        body: JSON,
        model: str,
        *,
        timeout: float | None = None,
        beta: str | None = None,
        version: str | None = None,
    ) -> JSON:
        await self._called("messages", body, model, beta)
        content = [{"type": "text", "text": "native"}]
        return {"type": "message", "model": model, "content": content, "usage": dict(NATIVE_USAGE)}

    def messages_stream(
        self,
        body: JSON,
        model: str,
        *,
        timeout: float | None = None,
        beta: str | None = None,
        version: str | None = None,
    ) -> AsyncIterator[SSEEvent]:
        return self._relay("messages_stream", body, model, beta, self.events)

    async def count_tokens(
        self,
        body: JSON,
        model: str,
        *,
        timeout: float | None = None,
        beta: str | None = None,
        version: str | None = None,
    ) -> JSON:
        await self._called("count_tokens", body, model, beta)
        return {"input_tokens": 42}


@dataclass(frozen=True, slots=True)
class Seen:
    """One hook call: `before`, `after` or `on_end`, by which hook, with what usage and error."""

    what: str
    hook: str
    usage: Usage | None = None
    error: BaseException | None = None


class RecordingHook(Hook):
    """Records every call in `seen`, and in `log` when one is shared by a chain's hooks (to see
    the order across them). `refuse` makes `before` raise it; `answer` makes it answer early."""

    def __init__(
        self,
        name: str = "recorder",
        log: list[Seen] | None = None,
        *,
        refuse: BaseException | None = None,
        answer: Answer | None = None,
    ) -> None:
        self.name = name
        self.log = log if log is not None else []
        self.seen: list[Seen] = []
        self.refuse = refuse
        self.answer = answer
        self.contexts: list[RequestContext] = []
        self.calls: list[Call] = []

    def _note(self, seen: Seen) -> None:
        self.seen.append(seen)
        self.log.append(seen)

    async def before(self, ctx: RequestContext, call: Call) -> Answer | None:
        self._note(Seen("before", self.name))
        self.contexts.append(ctx)
        self.calls.append(call)
        if self.refuse is not None:
            raise self.refuse
        return self.answer

    async def after(self, ctx: RequestContext, call: Call, value: Any) -> Any:
        self._note(Seen("after", self.name))
        return value

    def on_end(
        self, ctx: RequestContext, call: Call, usage: Usage | None, error: BaseException | None
    ) -> None:
        self._note(Seen("on_end", self.name, usage, error))

    def count(self, what: str) -> int:
        return sum(1 for seen in self.seen if seen.what == what)

    @property
    def ends(self) -> list[Seen]:
        return [seen for seen in self.seen if seen.what == "on_end"]


def provider(name: str = "stub") -> StubProvider:
    return StubProvider(name)


def target(key: str, **fields: Any) -> Target:
    return Target(key=key, provider=provider(key), model=key, **fields)


def group(name: str, *targets: Target, **policy: Any) -> Group:
    fallbacks = {k: tuple(policy.pop(k)) for k in list(policy) if k.endswith("fallbacks")}
    quantile = policy.pop("hedge_quantile", None)
    return Group(
        name=name,
        targets=targets,
        policy=RoutingSettings(**policy),
        hedge_quantile=quantile,
        **fallbacks,
    )


QUICK_BREAKER = BreakerSettings(failures=2, failure_rate=None, window=60, cooldown=30, long_retry_after=20)


def catalog(models: dict[str, dict[str, Any]], **routing: Any) -> ModelCatalog:
    """A catalog over one stub provider `p`; each model block as in the YAML config."""
    config = GatewayConfig.model_validate(
        {"providers": {"p": ProviderSettings(type="stub")}, "models": models, "routing": routing}
    )
    return ModelCatalog(config, {"p": provider("p")})


def deployments(*models: str, **fields: Any) -> dict[str, Any]:
    return {"deployments": [{"provider": "p", "model": m} for m in models], **fields}


def stub_catalog(
    providers: Sequence[Provider], models: dict[str, Any] | None = None, **config: Any
) -> ModelCatalog:
    """A catalog over `providers`; by default one model per provider, named after it and
    served upstream as `up-<name>`."""
    if models is None:
        models = {p.name: {"deployments": [{"provider": p.name, "model": f"up-{p.name}"}]} for p in providers}
    data = {"providers": {p.name: p.settings for p in providers}, "models": models, **config}
    return ModelCatalog(GatewayConfig.model_validate(data), {p.name: p for p in providers})


async def no_sleep(seconds: float) -> None:
    """The executor's backoff, counted as done at once."""


def pipeline(
    *providers: Provider, models: dict[str, Any] | None = None, hooks: Sequence[Hook] = (), **config: Any
) -> Pipeline:
    """A pipeline over `stub_catalog(providers, models, **config)`, backing off without sleeping."""
    models_catalog = stub_catalog(providers, models, **config)
    executor = Executor(random.Random(0), catalog=models_catalog, sleep=no_sleep)
    return Pipeline(models_catalog, executor, HookChain(hooks))


def context(**fields: Any) -> RequestContext:
    return RequestContext(fields.pop("request_id", "req-test"), OPEN, fields.pop("dialect", "test"), **fields)


def gateway_config(data: dict[str, Any]) -> GatewayConfig:
    """A config as the loader builds it from YAML, each provider block validated by its type."""
    return build_config(data, settings_model, "<test>")


def mock_config(**extra: Any) -> GatewayConfig:
    """One model, `mock`, served by the embedded mock provider; `extra` adds top-level keys."""
    data = {
        "providers": {"mock": {"type": "mock"}},
        "models": {"mock": {"deployments": [{"provider": "mock"}]}},
        "database_url": "sqlite:///:memory:",
        **extra,
    }
    return gateway_config(data)
