"""The one wrapper every per-request route runs through, as a plain ASGI app.

    authenticate → JSON content type → read the body once → RequestContext → dialect.parse → watch disconnect
    → pipeline.complete | pipeline.stream → dialect.render | render_stream → served headers
    any GatewayError → dialect.error_body (before the first byte) | error_event (after it)

What observability needs outlives the call in `scope["state"]`: `context` (the request's
`RequestContext`, once made) and `error` (the `GatewayError` the client was answered with,
before or after the first byte), read by the middleware that logs, counts and traces.

Deliberately not a FastAPI route with dependencies: dependency solving cost a large share
of the CPU per request (docs/performance.md). `api/routes.py` dispatches to endpoints
before FastAPI's router; everything else (admin, health, models) stays on FastAPI.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from llm_gateway.api.auth import authenticate_any
from llm_gateway.api.body import check_content_type, parse_object, read_body
from llm_gateway.api.dialect import Dialect, flag
from llm_gateway.api.disconnect import ClientDisconnected, until_disconnected
from llm_gateway.api.refusals import ShuttingDown
from llm_gateway.api.served import (
    NO_RETRY_HEADER,
    RawHeaders,
    cache_headers,
    error_headers,
    hook_headers,
    served_headers,
)
from llm_gateway.api.sse import close_iterator, send_event_stream
from llm_gateway.core.context import Call, Principal, RequestContext
from llm_gateway.core.errors import GatewayError
from llm_gateway.runtime import Runtime

log = logging.getLogger("llm_gateway.endpoint")

JSON_TYPE = (b"content-type", b"application/json")
SHUTTING_DOWN = ShuttingDown("the gateway is shutting down; the stream was cut short, retry the request")


class Endpoint:
    """A per-request route in its front door's dialect."""

    __slots__ = ("_farewell", "dialect")

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._farewell = dialect.error_event(SHUTTING_DOWN, None)
        """The event a stream cut short by shutdown ends with, rendered once."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime = scope["app"].state.runtime  # read once: a reload swaps it for new requests
        runtime.active += 1
        try:
            await self._serve(runtime, scope, receive, send)
        finally:
            runtime.active -= 1

    async def _serve(self, runtime: Runtime, scope: Scope, receive: Receive, send: Send) -> None:
        request_id: str | None = scope["state"].get("request_id")
        dialect = self.dialect
        ctx: RequestContext | None = None
        try:
            headers = Headers(scope=scope)
            principal = self.authenticate(runtime, headers, scope)
            if not isinstance(principal, Principal):  # a JWT whose signing key is being fetched
                principal = await principal
            check_content_type(headers.get("content-type"))
            body = parse_object(await read_body(receive))
            ctx = RequestContext(
                request_id or "", principal, dialect.name, retries=not flag(headers.get(NO_RETRY_HEADER))
            )
            scope["state"]["context"] = ctx
            call = ctx.call = dialect.parse_http(ctx, body, headers, scope)
            cache_headers(headers, call)
            if call.stream:
                chunks = await until_disconnected(receive, runtime.pipeline.stream(ctx, call))
            else:
                value = await until_disconnected(receive, runtime.pipeline.complete(ctx, call))
                content = dialect.render(ctx, call, value)
        except GatewayError as error:
            await self.error(send, error, request_id, scope, ctx)
            return
        except Exception as exc:
            await self.error(send, self._unexpected(exc, request_id, scope), request_id, scope, ctx)
            return
        if not call.stream:
            await send_json(send, 200, content, served_headers(ctx))
            return
        try:
            frames = self._frames(ctx, call, chunks, request_id, scope)
            await send_event_stream(frames, served_headers(ctx), receive, send, farewell=self._farewell)
        finally:
            await close_iterator(chunks)  # the pipeline's stream: hooks' on_end and the upstream

    def authenticate(
        self, runtime: Runtime, headers: Headers, scope: Scope
    ) -> Principal | Awaitable[Principal]:
        """Who is calling: the presented key (or JWT). The UI's playground signs in by its
        session instead (`api/ui/playground.py`)."""
        return authenticate_any(headers, runtime.master_key, runtime.keys, runtime.jwt)

    async def _frames(
        self,
        ctx: RequestContext,
        call: Call,
        chunks: AsyncIterator[Any],
        request_id: str | None,
        scope: Scope,
    ) -> AsyncIterator[bytes]:
        """The dialect's frames; a failure after the first becomes one error event."""
        try:
            async for frame in self.dialect.render_stream(ctx, call, chunks):
                yield frame
        except GatewayError as error:
            log.warning("stream failed after the first chunk (request %s): %s", request_id, error.message)
            scope["state"]["error"] = error
            yield self.dialect.error_event(error, request_id)
        except Exception as exc:
            unexpected = self._unexpected(exc, request_id, None)
            scope["state"]["error"] = unexpected
            yield self.dialect.error_event(unexpected, request_id)

    async def error(
        self,
        send: Send,
        error: GatewayError,
        request_id: str | None,
        scope: Scope,
        ctx: RequestContext | None = None,
    ) -> None:
        """Answer `error` in this route's dialect, with the headers hooks added (rate limits)."""
        scope["state"]["error"] = error
        if error.status_code >= 500 and not isinstance(error, ClientDisconnected):
            log.warning(
                "%s %s -> %d %s", scope.get("method"), scope.get("path"), error.status_code, error.message
            )
        content = self.dialect.error_body(error, request_id)
        headers = error_headers(error)
        if ctx is not None and ctx.headers:
            headers.extend(hook_headers(ctx))
        await send_json(send, error.status_code, content, headers)

    @staticmethod
    def _unexpected(exc: Exception, request_id: str | None, scope: Scope | None) -> GatewayError:
        path = scope.get("path") if scope is not None else "a stream"
        log.error("unhandled error on %s (request %s)", path, request_id, exc_info=exc)
        return GatewayError(f"internal gateway error (request id {request_id})")


async def send_json(send: Send, status: int, content: bytes, headers: RawHeaders) -> None:
    start = [JSON_TYPE, (b"content-length", str(len(content)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": content})
