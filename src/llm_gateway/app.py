"""`create_app(config)`: the FastAPI application, its lifespan, middleware and routes.

RequestIdMiddleware → [AccessMiddleware | TracingMiddleware] → AllowedHostsMiddleware
    → [CORSMiddleware] → LimitsMiddleware
    → RoutesMiddleware ─▶ Endpoint (per-request routes)
                     └──▶ FastAPI router (admin, health, models, OpenAPI for the master key)

The access middleware (one record per request, for the access log and the metrics) is
added unless both are off; when `tracing:` is configured it also traces the front doors
(it begins the trace before its record, so the access line carries the trace id: one
layer where two cost a visible share of a request), and the tracing middleware stands in
for it only where access log and metrics are both off; CORS only when `server.cors`
is; the router never redirects to add or drop a trailing slash (the redirect would reflect
the `Host` header).

The lifespan also announces the drain: uvicorn's SIGTERM/SIGINT handlers are chained so
that `observability/draining.py` logs it and sets its gauges the moment it starts.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from llm_gateway import __version__
from llm_gateway.api import admin, gemini_models, health, me, openai, responses, ui
from llm_gateway.api import metrics as metrics_route
from llm_gateway.api.auth import require_master_key
from llm_gateway.api.errors import install_error_handlers
from llm_gateway.api.middleware.access import AccessMiddleware, TraceId, current_trace_id
from llm_gateway.api.middleware.hosts import AllowedHostsMiddleware
from llm_gateway.api.middleware.limits import LimitsMiddleware
from llm_gateway.api.middleware.request_id import RequestIdMiddleware
from llm_gateway.api.middleware.tracing import TracingMiddleware
from llm_gateway.api.routes import RoutesMiddleware, RouteTable, default_routes
from llm_gateway.core.config import GatewayConfig, is_loopback
from llm_gateway.observability.draining import Drain
from llm_gateway.observability.logging import access_sink
from llm_gateway.observability.metrics import Metrics
from llm_gateway.reloader import ConfigReloader, ConfigSource
from llm_gateway.runtime import Runtime
from llm_gateway.services.hooks import Hook

NO_FASTAPI_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)
"""FastAPI's own OpenTelemetry (0.16x and later) off: the gateway traces and measures its
requests itself (`tracing:`, `metrics:`), and FastAPI's check for a configured provider
looked for a configured provider on every request (4.6 µs a request measured)."""

log = logging.getLogger("llm_gateway")


def create_app(
    config: GatewayConfig,
    note: str | None = None,
    hooks: Sequence[Hook] = (),
    source: ConfigSource | None = None,
) -> FastAPI:
    """Build the app. Nothing starts until the server runs the lifespan. `hooks` are added
    after those the config names (an embedding application's own, or a test's). `source`
    says where `config` came from, for reloads (SIGHUP, `POST /admin/config/reload`)."""
    metrics = Metrics(config.metrics) if config.metrics.enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if note:
            log.info(note)
        warn_if_open(config)
        runtime = Runtime.build(config, hooks=hooks, metrics=metrics)
        await runtime.start()
        app.state.runtime = runtime
        freeze_heap()
        reloader = app.state.reloader = ConfigReloader(app.state, source or ConfigSource(None))
        on_hangup = _reload_on_sighup(reloader)
        drain = Drain(lambda: app.state.runtime.active, metrics, config.server.drain_timeout)
        restore_signals = _announce_drain(drain)
        log.info(
            "llm-gateway %s ready: %d provider(s), models: %s",
            __version__,
            len(runtime.providers),
            ", ".join(runtime.catalog.names),
        )
        try:
            yield
        finally:
            if on_hangup:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            restore_signals()
            drain.end()
            await reloader.aclose()
            await app.state.runtime.aclose()  # the current one: a reload may have replaced it
            drain.forget()

    app = FastAPI(
        title="llm-gateway",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
        **NO_FASTAPI_TELEMETRY,
    )
    for module in (health, openai, responses, gemini_models, me, admin, metrics_route):
        app.include_router(module.router)
    ui.mount(app)
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
    traced = routes if config.tracing is not None else None
    if not _add_access(app, config, metrics, traced) and traced is not None:
        app.add_middleware(TracingMiddleware, routes=routes)
    app.add_middleware(RequestIdMiddleware)
    return app


def freeze_heap() -> None:
    """Take what start-up made (modules, config, clients; some 200,000 objects) out of the
    cyclic garbage collector's sight. Requests allocate enough to set off a full collection
    every few thousand of them, and each walked that whole heap: 16% of a served request's
    CPU in `bench/ab.py` runs, 7% after this (docs/performance.md). Whatever start-up
    left as cyclic garbage is collected first; what it keeps alive stays, as it would."""
    gc.collect()
    gc.freeze()


def _reload_on_sighup(reloader: ConfigReloader) -> bool:
    """SIGHUP reloads the config (where this loop may handle signals: the main thread)."""
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.reload_in_background)
    except (RuntimeError, NotImplementedError, ValueError):
        return False
    return True


DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _announce_drain(drain: Drain) -> Callable[[], None]:
    """Chain `drain.begin` before the server's own SIGTERM/SIGINT handlers (uvicorn installs
    them with `signal.signal` before the lifespan starts, and drains when they run). Only in
    the main thread, and only over a handler that is a function (a server that leaves the
    defaults in place drains, if at all, without telling us). Returns what undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    chained: dict[int, tuple[Callable[[int, FrameType | None], object], object]] = {}
    for number in DRAIN_SIGNALS:
        previous = signal.getsignal(number)
        if not callable(previous):
            continue

        def announce(
            signum: int,
            frame: FrameType | None,
            previous: Callable[[int, FrameType | None], object] = previous,
        ) -> None:
            # A signal handler runs between two bytecodes of whatever the loop was doing:
            # the drain starts on the loop instead (metric values take locks). The server's
            # own handler runs whatever happens here.
            try:
                loop.call_soon_threadsafe(drain.begin)
            except RuntimeError:  # the loop is closed: nothing left to announce
                pass
            finally:
                previous(signum, frame)

        signal.signal(number, announce)
        chained[number] = (previous, announce)

    def restore() -> None:
        for number, (previous, announce) in chained.items():
            if signal.getsignal(number) is announce:
                signal.signal(number, previous)

    return restore


def _add_access(
    app: FastAPI, config: GatewayConfig, metrics: Metrics | None, traced: RouteTable | None
) -> bool:
    """The access log and the metrics share one middleware; with both off there is none.
    Where there is one, it traces the front doors too (`traced`). Whether it was added."""
    sinks = [access_sink()] if config.logging.access else []
    if metrics is not None:
        sinks.append(metrics.observe)
    if not sinks:
        return False
    app.add_middleware(
        AccessMiddleware,
        sinks=sinks,
        on_start=metrics.in_flight.inc if metrics is not None else None,
        on_end=metrics.in_flight.dec if metrics is not None else None,
        trace_id=_trace_id(config),
        traced=traced,
    )
    return True


def _trace_id(config: GatewayConfig) -> TraceId | None:
    """Where the access line's trace id comes from: the gateway's own request trace when
    `tracing:` is configured (it never makes its spans OpenTelemetry's current one), else
    whatever span an embedding application's instrumentation made current."""
    if config.tracing is None:
        return current_trace_id()
    from llm_gateway.observability.tracing import current_trace_id as traced_id

    return traced_id


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
