"""One record per request, for the access log and the metrics (observability/).

Placed just inside `RequestIdMiddleware`, so it sees every answer: the 421s, 413s and 431s
of the middleware below it, 404s and 405s, the 401s no hook ever sees. It notes the status
sent and, at the end, reads what the endpoint left in `scope["state"]` (the request's
`RequestContext` and the error the client got) and the upstream time the attempt observer
added up, builds one immutable `RequestRecord` and hands it to each sink. The sinks only
enqueue and count; nothing here waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_gateway.api.routes import RouteTable
from llm_gateway.core.context import RequestContext
from llm_gateway.core.errors import AllDeploymentsFailed
from llm_gateway.observability.attempts import CURRENT, UpstreamClock
from llm_gateway.observability.record import RequestRecord, error_type, tokens_of
from llm_gateway.services.endusers import end_user

if TYPE_CHECKING:
    from llm_gateway.observability.tracing import RequestTrace, Tracing

Sink = Callable[[RequestRecord], None]
TraceId = Callable[[], str | None]
log = logging.getLogger("llm_gateway.access")
GONE = 499
"""The status recorded when the client went away before any answer was sent (nginx's)."""


def current_trace_id() -> TraceId | None:
    """Reads the current OpenTelemetry span's trace id, if opentelemetry-api is installed."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None

    def trace_id() -> str | None:
        context = trace.get_current_span().get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None

    return trace_id


class AccessMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        sinks: Sequence[Sink],
        on_start: Callable[[], None] | None = None,
        on_end: Callable[[], None] | None = None,
        trace_id: TraceId | None = None,
        traced: RouteTable | None = None,
    ) -> None:
        """`traced`: the front doors, when tracing is configured: this middleware then does
        the tracing middleware's work as well (begins each front-door request's trace before
        its own, ends it after the record), one layer and one `send` wrapper instead of two."""
        self.app = app
        self.sinks = tuple(sinks)
        self.on_start = on_start
        self.on_end = on_end
        self.trace_id = trace_id
        self.traced = traced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        wall = time.time()
        tracing: Tracing | None = None
        request: RequestTrace | None = None
        trace_id = self.trace_id
        if self.traced is not None:
            endpoint = self.traced.get(scope["path"])
            tracing = scope["app"].state.runtime.tracing if endpoint is not None else None
            if tracing is not None and endpoint is not None:
                request = tracing.begin(
                    scope["headers"], endpoint.dialect.name, scope["method"], scope["path"]
                )
                trace_id = None  # read from `request` at the end
        clock = UpstreamClock()
        token = CURRENT.set(clock)
        noted: list[Any] = [0, None]

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                noted[0] = message["status"]
                if trace_id is not None:
                    noted[1] = trace_id()
            await send(message)

        if self.on_start is not None:
            self.on_start()
        cancelled = False
        try:
            await self.app(scope, receive, noting)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            sent = noted[0]
            CURRENT.reset(token)
            if self.on_end is not None:
                self.on_end()
            if not sent:
                gone = cancelled or error_type(scope["state"].get("error")) == "client_disconnected"
                noted[0] = GONE if gone else 500
            if request is not None:
                noted[1] = request.trace_hex()
            self._finish(scope, noted[0], noted[1], started, wall, clock)
            if tracing is not None and request is not None:
                tracing.end(request, scope["state"], sent or 500)  # nothing sent: the server answers 500

    def _finish(
        self, scope: Scope, status: int, trace: str | None, started: float, wall: float, clock: UpstreamClock
    ) -> None:
        try:
            record = build_record(scope, status, trace, started, wall, clock.total())
        except Exception:
            log.exception("could not build the access record of request %s", scope["state"].get("request_id"))
            return
        for sink in self.sinks:
            try:
                sink(record)
            except Exception:
                log.exception("an access sink failed")


def build_record(
    scope: Scope, status: int, trace: str | None, started: float, wall: float, upstream: float | None
) -> RequestRecord:
    state = scope["state"]
    latency = time.monotonic() - started
    error = state.get("error")
    ctx: RequestContext | None = state.get("context")
    request_id = state.get("request_id", "")
    kind = None if error is None else error_type(error)
    scope_kind = None if error is None else getattr(error, "scope", None)
    if ctx is None:
        return RequestRecord(
            wall, request_id, scope["method"], scope["path"], status, latency, trace,
            error_type=kind, rejected_scope=scope_kind,
        )  # fmt: skip
    principal, route, call = ctx.principal, ctx.route, ctx.call
    if route is not None:
        attempts = route.attempts
    else:
        attempts = error.attempts if isinstance(error, AllDeploymentsFailed) else 0
    first = ctx.first_chunk_at
    return RequestRecord(
        wall, request_id, scope["method"], scope["path"], status, latency, trace,
        principal.key_id, principal.name, principal.team_id,
        end_user(principal, call) if call is not None else None,
        ctx.dialect,
        call.model if call is not None else None,
        route.deployment if route else None,
        route.provider if route else None,
        call.stream if call is not None else False,
        kind, attempts,
        route.fallback if route else None,
        route.hedged if route else False,
        ctx.cache, scope_kind, tokens_of(ctx.usage), ctx.usage_estimated, ctx.cost,
        route is not None and ctx.cost is None and ctx.usage is not None,
        None if first is None else first - started,
        upstream,
        None if upstream is None else max(latency - upstream, 0.0),
        ctx.cache_saved_usd,
        guardrail_results(ctx),
        ctx.cache_bytes,
    )  # fmt: skip


def guardrail_results(ctx: RequestContext) -> tuple[tuple[str, str], ...]:
    """The guardrails' results the guardrail hook left (`ctx.extras["guardrails"]`)."""
    outcomes = ctx.extras.get("guardrails")
    results = getattr(outcomes, "results", None)
    return tuple(results.items()) if isinstance(results, dict) else ()
