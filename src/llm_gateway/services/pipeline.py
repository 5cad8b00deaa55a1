"""One request's path through the gateway, the same for every front door and operation.

    render a prompt template, if a chat or Responses request names one (services/templates.py)
    → resolve the model (narrowed to deployments able to serve the operation)
    → check the client's fallbacks → hooks.before → executor (routing → provider)
    → hooks.after, or hooks.on_end when a stream ends        (services/hooks.py)
    → service.delivered: the result as the client gets it (a Responses answer stored)

The endpoint wrapper (api/endpoint.py) calls `complete` or `stream` with the request's
context and the call its dialect parsed; what served, and the usage, land in the context.
With no hooks configured the chain is skipped outright: the cost is one resolve and one
executor call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from llm_gateway.core.context import Call, Operation, RequestContext, Route
from llm_gateway.core.errors import InvalidRequest, ModelNotFound
from llm_gateway.routing.deployments import Group, ModelCatalog
from llm_gateway.routing.executor import Executor, Served
from llm_gateway.services.chat import ChatService, ChatTokensService
from llm_gateway.services.completions import CompletionsService
from llm_gateway.services.embeddings import EmbeddingService
from llm_gateway.services.hooks import HookChain
from llm_gateway.services.messages import CountTokensService, MessagesService
from llm_gateway.services.responses import InputTokensService, ResponsesService
from llm_gateway.services.service import Service
from llm_gateway.services.templates import PROMPT_FIELD, Templates
from llm_gateway.store.responses import MemoryResponseStore, ResponseStore


def default_services(
    *, metered: bool = True, responses: ResponseStore | None = None
) -> dict[Operation, Service]:
    """One service per operation; `metered`: some hook reads usage, so streams report it;
    `responses`: where Responses API answers are stored (by default a fresh in-memory store)."""
    store = responses if responses is not None else MemoryResponseStore()
    return {
        Operation.CHAT: ChatService(metered=metered),
        Operation.EMBEDDINGS: EmbeddingService(),
        Operation.MESSAGES: MessagesService(),
        Operation.COUNT_TOKENS: CountTokensService(),
        Operation.COMPLETIONS: CompletionsService(metered=metered),
        Operation.RESPONSES: ResponsesService(store),
        Operation.RESPONSES_INPUT_TOKENS: InputTokensService(store),
        Operation.CHAT_TOKENS: ChatTokensService(),
    }


class Pipeline:
    def __init__(
        self,
        catalog: ModelCatalog,
        executor: Executor,
        hooks: HookChain | None = None,
        services: Mapping[Operation, Service] | None = None,
        *,
        responses: ResponseStore | None = None,
        templates: Templates | None = None,
    ) -> None:
        self._catalog = catalog
        self._templates = templates or Templates({})
        self._executor = executor
        self._hooks = hooks or HookChain()
        self._services = dict(services or default_services(metered=bool(self._hooks), responses=responses))

    @property
    def catalog(self) -> ModelCatalog:
        return self._catalog

    async def complete(self, ctx: RequestContext, call: Call) -> Any:
        """A non-streaming result; `ctx.route` says who served it. `ctx.usage` (what it cost)
        is read for the hooks, so with an empty chain it is not computed."""
        service = self._services[call.operation]
        group = self._prepare(ctx, call, service)
        if not self._hooks:
            value = await self._routed(ctx, call, service, group)
        else:

            async def proceed() -> Any:
                return await self._routed(ctx, call, service, group)

            value = await self._hooks.complete(ctx, call, proceed, service.usage)
        await service.delivered(call, value)
        return value

    async def stream(self, ctx: RequestContext, call: Call) -> AsyncIterator[Any]:
        """The stream, its first chunk already received (failures before it are ordinary
        errors that were retried); the caller must close it (`aclose`) when done."""
        service = self._services[call.operation]
        group = self._prepare(ctx, call, service)
        if not self._hooks:
            chunks = await self._routed_stream(ctx, call, service, group)
        else:

            async def proceed() -> AsyncIterator[Any]:
                return await self._routed_stream(ctx, call, service, group)

            chunks = await self._hooks.stream(ctx, call, proceed, service.meter)
        return service.delivered_stream(call, chunks)

    def _prepare(self, ctx: RequestContext, call: Call, service: Service) -> Group:
        if PROMPT_FIELD in call.body:
            self._templates.apply(ctx, call)
        group = service.group(self._catalog, call)
        call.model = group.name
        if ctx.fallbacks:
            for name in ctx.fallbacks:
                try:
                    self._catalog.group(name)
                except ModelNotFound:
                    raise InvalidRequest(f"'fallbacks': unknown model {name!r}", param="fallbacks") from None
        return group

    async def _routed(self, ctx: RequestContext, call: Call, service: Service, group: Group) -> Any:
        await service.prepare(call)
        local = service.local_answer(call, group)
        if local is not None:
            return local
        served = await self._executor.call(
            group, service.attempt(call), fallbacks=ctx.fallbacks, retries=ctx.retries, deadline=ctx.deadline
        )
        ctx.route = _route(served)
        return served.value

    async def _routed_stream(
        self, ctx: RequestContext, call: Call, service: Service, group: Group
    ) -> AsyncIterator[Any]:
        await service.prepare(call)
        served = await self._executor.open_stream(
            group,
            service.stream_attempt(call),
            fallbacks=ctx.fallbacks,
            retries=ctx.retries,
            deadline=ctx.deadline,
        )
        ctx.first_chunk_at = time.monotonic()
        ctx.route = _route(served)
        return service.client_stream(ctx, call, served.value, served.target.model)


def _route(served: Served[Any]) -> Route:
    target = served.target
    return Route(
        deployment=target.key,
        provider=target.provider.name,
        model=target.model,
        attempts=served.attempts,
        fallback=served.fallback,
        hedged=served.hedged,
    )
