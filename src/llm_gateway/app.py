"""`create_app(config)`: the FastAPI application, its lifespan, routers and error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from llm_gateway import __version__
from llm_gateway.api import admin, anthropic, embeddings, health, openai, simple
from llm_gateway.api.errors import install_error_handlers
from llm_gateway.api.middleware import GatewayMiddleware
from llm_gateway.core.config import GatewayConfig
from llm_gateway.runtime import Runtime

log = logging.getLogger("llm_gateway")


def create_app(config: GatewayConfig, note: str | None = None) -> FastAPI:
    """Build the app. Nothing starts until the server runs the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if note:
            log.info(note)
        runtime = Runtime.build(config)
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
    for module in (health, openai, simple, embeddings, anthropic, admin):
        app.include_router(module.router)
    install_error_handlers(app)
    app.add_middleware(
        GatewayMiddleware,
        max_request_bytes=config.server.max_request_bytes,
        max_header_bytes=config.server.max_header_bytes,
    )
    return app
