"""`create_app(config)`: the FastAPI application, its lifespan, middleware and routes.

RequestIdMiddleware → [TracingMiddleware] → AllowedHostsMiddleware → [CORSMiddleware] → LimitsMiddleware
    → RoutesMiddleware ─▶ Endpoint (per-request routes)
                     └──▶ FastAPI router (admin, health, models, OpenAPI for the master key)

CORS is added only when `server.cors` is configured, tracing only when `tracing:` is; the
router never redirects to add or drop a trailing slash (the redirect would reflect the `Host` header).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from llm_gateway import __version__
from llm_gateway.api import admin, health, me, openai, responses
from llm_gateway.api.auth import require_master_key
from llm_gateway.api.errors import install_error_handlers
from llm_gateway.api.middleware.hosts import AllowedHostsMiddleware
from llm_gateway.api.middleware.limits import LimitsMiddleware
from llm_gateway.api.middleware.request_id import RequestIdMiddleware
from llm_gateway.api.middleware.tracing import TracingMiddleware
from llm_gateway.api.routes import RoutesMiddleware, default_routes
from llm_gateway.core.config import GatewayConfig, is_loopback
from llm_gateway.runtime import Runtime
from llm_gateway.services.hooks import Hook

log = logging.getLogger("llm_gateway")


def create_app(config: GatewayConfig, note: str | None = None, hooks: Sequence[Hook] = ()) -> FastAPI:
    """Build the app. Nothing starts until the server runs the lifespan. `hooks` are added
    after those the config names (an embedding application's own, or a test's)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if note:
            log.info(note)
        warn_if_open(config)
        runtime = Runtime.build(config, hooks=hooks)
        await runtime.start()
        app.state.runtime = runtime
        log.info(
            "llm-gateway %s ready: %d provider(s), models: %s",
            __version__,
            len(runtime.providers),
            ", ".join(runtime.catalog.names),
        )
        try:
            yield
        finally:
            await runtime.aclose()

    app = FastAPI(
        title="llm-gateway",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    for module in (health, openai, responses, me, admin):
        app.include_router(module.router)
    if config.server.openapi and config.master_key is not None:
        _serve_openapi(app)
    install_error_handlers(app)
    routes = default_routes()
    server = config.server
    # add_middleware wraps: the last added runs first.
    app.add_middleware(RoutesMiddleware, routes=routes)
    app.add_middleware(
        LimitsMiddleware,
        routes=routes,
        max_request_bytes=server.max_request_bytes,
        max_header_bytes=server.max_header_bytes,
    )
    if server.cors is not None:
        app.add_middleware(CORSMiddleware, **server.cors.middleware_options())
    app.add_middleware(AllowedHostsMiddleware, routes=routes, allowed_hosts=server.hosts())
    if config.tracing is not None:
        app.add_middleware(TracingMiddleware, routes=routes)
    app.add_middleware(RequestIdMiddleware)
    return app


def _serve_openapi(app: FastAPI) -> None:
    """`/openapi.json`, to the master key only: it lists the admin API."""

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> Response:
        require_master_key(request.headers, request.app.state.runtime.master_key)
        return Response(orjson.dumps(app.openapi()), media_type="application/json")


def warn_if_open(config: GatewayConfig) -> None:
    """Without a master key anyone who can reach the gateway spends its provider keys."""
    if config.master_key is None and not is_loopback(config.server.host):
        log.warning(
            "serving on %s without a master key: anyone who can reach this address can use the "
            "configured providers; set master_key (GATEWAY_MASTER_KEY) or bind to 127.0.0.1",
            config.server.host,
        )
