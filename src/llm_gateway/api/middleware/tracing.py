"""The server span of every request to a front door (a per-request route), when tracing is
configured; other paths (health, admin, models) pass untouched.

Installed by `create_app` only when `tracing:` is set, just inside `RequestIdMiddleware`, so
the span covers everything the gateway does with the request (size limits included) and the
request id is known. The span ends after the last byte is sent, with what the endpoint left
in `scope["state"]`. The tracer itself is built in the lifespan and reached through the
runtime; this module imports no OpenTelemetry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_gateway.api.routes import RouteTable

if TYPE_CHECKING:
    from llm_gateway.observability.tracing import Tracing


class TracingMiddleware:
    def __init__(self, app: ASGIApp, *, routes: RouteTable) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        tracing: Tracing | None = scope["app"].state.runtime.tracing if endpoint is not None else None
        if endpoint is None or tracing is None:
            await self.app(scope, receive, send)
            return
        request = tracing.begin(scope["headers"], endpoint.dialect.name, scope["method"], scope["path"])
        status = 500  # if nothing is sent, the server answers 500

        async def send_traced(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_traced)
        finally:
            tracing.end(request, scope["state"], status)
