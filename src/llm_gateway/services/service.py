"""What one operation (chat, embeddings, messages, count_tokens) gives the pipeline.

A service turns a parsed `Call` into the attempt the executor runs on each deployment it
picks, says which deployments qualify (a capability), and how to read a result's usage.
The pipeline does everything else once: model resolution, the hook chain, routing and
the request context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import Usage
from llm_gateway.routing.deployments import Group, ModelCatalog, Target
from llm_gateway.services.hooks import Meter
from llm_gateway.services.usage import ChunkMeter, no_usage

Attempt = Callable[[Target], Awaitable[Any]]
StreamAttempt = Callable[[Target], AsyncIterator[Any]]


class Service:
    requires: ClassVar[Capability] = Capability.CHAT
    """What every deployment serving this operation must be able to do."""

    def attempt(self, call: Call) -> Attempt:
        raise InvalidRequest(f"{call.operation} cannot be answered without streaming", param="stream")

    def stream_attempt(self, call: Call) -> StreamAttempt:
        raise InvalidRequest(f"{call.operation} cannot be streamed", param="stream")

    def usage(self, value: Any) -> Usage | None:
        return no_usage(value)

    def meter(self, ctx: RequestContext) -> Meter:
        return ChunkMeter(ctx)

    def group(self, catalog: ModelCatalog, call: Call) -> Group:
        """The deployments that may serve this call: the model's group, narrowed to
        `requires` (a service whose deployments depend on the body narrows it further)."""
        return catalog.resolve(call.model, self.requires)

    def client_stream(
        self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any], upstream_model: str
    ) -> AsyncIterator[Any]:
        """The routed stream as the client (and the hook chain) will read it."""
        return chunks

    async def delivered(self, call: Call, value: Any) -> None:
        """The result exactly as the client gets it (every hook's `after` applied: output
        guardrails' redactions made, a refusal never reaching here); nothing by default."""
        return None

    def delivered_stream(self, call: Call, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The stream as the client reads it, outside every hook's `wrap_stream`; the one
        returned must close `chunks` when it is closed, even unread. As given by default."""
        return chunks

    async def prepare(self, call: Call) -> None:
        """Load what the call needs from a store before it is answered (once, after the
        hooks admitted it); nothing by default."""
        return None

    def local_answer(self, call: Call, group: Group) -> Any | None:
        """A result made here without routing (an estimate no deployment can give), or None."""
        return None
