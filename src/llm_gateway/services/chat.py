"""One chat request's orchestration: resolve the model, route, return what was served."""

from __future__ import annotations

from collections.abc import AsyncIterator

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.routing.deployments import Group, ModelCatalog, Target
from llm_gateway.routing.executor import Executor, Served


class ChatService:
    def __init__(self, catalog: ModelCatalog, executor: Executor) -> None:
        self._catalog = catalog
        self._executor = executor

    @property
    def executor(self) -> Executor:
        """The attempt loop, shared with services that route other calls (`/v1/messages`)."""
        return self._executor

    def resolve(self, request: ChatRequest) -> Group:
        model = request.get("model") or self._catalog.default_model
        if not model:
            raise InvalidRequest("you must provide a model parameter", param="model", code="missing_required_parameter")
        return self._catalog.group(model)

    async def complete(self, request: ChatRequest) -> Served[ChatCompletion]:
        group = self.resolve(request)

        async def attempt(target: Target) -> ChatCompletion:
            return await target.provider.complete(request, target.model, timeout=target.timeout)

        return await self._executor.call(group, attempt)

    async def stream(self, request: ChatRequest) -> Served[AsyncIterator[ChatChunk]]:
        group = self.resolve(request)

        def attempt(target: Target) -> AsyncIterator[ChatChunk]:
            return target.provider.stream(request, target.model, timeout=target.timeout)

        return await self._executor.open_stream(group, attempt)
