"""One chat request's orchestration: resolve the model, route, return what was served."""

from __future__ import annotations

from collections.abc import AsyncIterator

from llm_gateway.core.errors import InvalidRequest, ModelNotFound
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
            raise InvalidRequest(
                "you must provide a model parameter", param="model", code="missing_required_parameter"
            )
        return self._catalog.group(model)

    def client_fallbacks(self, request: ChatRequest) -> tuple[ChatRequest, list[str] | None]:
        """Take the gateway's own `fallbacks` field out of the body (no upstream knows it) and
        check it: a list of models this gateway serves, tried in order if the model fails."""
        if "fallbacks" not in request:
            return request, None
        stripped: ChatRequest = {k: v for k, v in request.items() if k != "fallbacks"}  # type: ignore[assignment]
        names = request["fallbacks"]  # type: ignore[typeddict-item]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InvalidRequest("'fallbacks' must be an array of model names", param="fallbacks")
        for name in names:
            try:
                self._catalog.group(name)
            except ModelNotFound:
                raise InvalidRequest(f"'fallbacks': unknown model {name!r}", param="fallbacks") from None
        return stripped, names

    async def complete(self, request: ChatRequest, *, retries: bool = True) -> Served[ChatCompletion]:
        group = self.resolve(request)
        request, fallbacks = self.client_fallbacks(request)

        async def attempt(target: Target) -> ChatCompletion:
            return await target.provider.complete(request, target.model, timeout=target.timeout)

        return await self._executor.call(group, attempt, fallbacks=fallbacks, retries=retries)

    async def stream(self, request: ChatRequest, *, retries: bool = True) -> Served[AsyncIterator[ChatChunk]]:
        group = self.resolve(request)
        request, fallbacks = self.client_fallbacks(request)

        def attempt(target: Target) -> AsyncIterator[ChatChunk]:
            return target.provider.stream(request, target.model, timeout=target.timeout)

        return await self._executor.open_stream(group, attempt, fallbacks=fallbacks, retries=retries)
