"""`create_app(config)`: the FastAPI application, its lifespan, middleware and routes.

RequestIdMiddleware → LimitsMiddleware → RoutesMiddleware ─▶ Endpoint (per-request routes)
                                                     └──▶ FastAPI router (admin, health, models)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from llm_gateway import __version__
from llm_gateway.api import admin, health, openai, responses
from llm_gateway.api.errors import install_error_handlers
from llm_gateway.api.middleware.limits import LimitsMiddleware
from llm_gateway.api.middleware.request_id import RequestIdMiddleware
from llm_gateway.api.routes import RoutesMiddleware, default_routes
from llm_gateway.core.config import GatewayConfig
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

    app = FastAPI(title="llm-gateway", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    for module in (health, openai, responses, admin):
        app.include_router(module.router)
    install_error_handlers(app)
    routes = default_routes()
    # add_middleware wraps: the last added runs first.
    app.add_middleware(RoutesMiddleware, routes=routes)
    app.add_middleware(
        LimitsMiddleware,
        routes=routes,
        max_request_bytes=config.server.max_request_bytes,
        max_header_bytes=config.server.max_header_bytes,
    )
    app.add_middleware(RequestIdMiddleware)
    return app
