"""OpenTelemetry traces over OTLP: a server span per request, a client span per attempt.

Built in the lifespan only when `tracing:` is configured (`Runtime.build`), flushed and shut
down in `Runtime.aclose`. It keeps its own `TracerProvider` (never the process-global one),
so an application embedding the gateway keeps its own set-up. Spans are queued by a
`BatchSpanProcessor` and exported from its thread: nothing on the event loop waits for the
collector.

The tracing middleware calls `begin` when a request arrives, which continues the client's
W3C `traceparent` (sampling parent-based, then `sample_ratio`) and makes the request's trace
current in a context variable; `end` when its last byte is sent. Attempt reports arrive on
the request's task (or a hedge's, which copies its context), so `on_attempt` finds the
request's server span there and records the attempt after the fact, as a child span with
its real start and end.

`upstream_headers` adds a `traceparent` to every upstream request. For a recorded request
it names a span id chosen there, and remembers it (in the attempt's context, and in the
request's list of ids sent to that provider); the attempt's client span is then given that
id, so an instrumented upstream's spans hang under the attempt that called it. A report
that finds no id of its own in its context (a hedged stream ends on the request's task, not
the hedge's) takes the oldest unclaimed one sent to its provider.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from llm_gateway import __version__
from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.errors import GatewayError
from llm_gateway.core.tracing_config import TracingSettings
from llm_gateway.observability.genai_metrics import GenAIMetrics
from llm_gateway.observability.record import error_type
from llm_gateway.observability.spans import (
    ANSWER,
    CALL,
    OPERATIONS,
    Attempt,
    attempt_attributes,
    input_messages,
    output_messages,
    server_attributes,
    span_name,
)

_PROPAGATOR = TraceContextTextMapPropagator()
_CARRIED = {b"traceparent": "traceparent", b"tracestate": "tracestate"}


class RequestTrace:
    """One request's trace while it is served: its server span when recorded (`span` and
    `context`), its ids either way (a dropped request has no OpenTelemetry object at all)."""

    __slots__ = (
        "_own",
        "context",
        "flags",
        "operation",
        "sent",
        "span",
        "span_id",
        "token",
        "trace_id",
        "tracestate",
    )

    def __init__(
        self,
        operation: str,
        span: trace.Span | None,
        ids: tuple[int, int, int],
        tracestate: str = "",
    ) -> None:
        self.operation = operation
        self.span = span
        self.context: Context | None = trace.set_span_in_context(span) if span is not None else None
        self.trace_id, self.span_id, self.flags = ids
        self.tracestate = tracestate
        self.token: Token[RequestTrace | None] | None = None
        self.sent: dict[str, list[int]] = {}
        """Attempt span ids sent upstream and not yet claimed by a report, by provider."""
        self._own: str | None = None

    def traceparent(self, span_id: int | None = None) -> str:
        """The `traceparent` naming `span_id` (by default the server span's) as the parent."""
        if span_id is None:
            if self._own is None:
                self._own = f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.flags:02x}"
            return self._own
        return f"00-{self.trace_id:032x}-{span_id:016x}-{self.flags:02x}"

    def trace_hex(self) -> str:
        """The trace id as the access line and `traceparent` write it (32 hex digits)."""
        own = self._own
        return own[3:35] if own is not None else format(self.trace_id, "032x")

    def claim(self, provider: str) -> int | None:
        """The span id the reported attempt sent upstream, if it sent one."""
        sent = self.sent.get(provider)
        if not sent:
            return None
        own = _ATTEMPT.get()
        if own is not None and own in sent:
            sent.remove(own)
            return own
        return sent.pop(0)


class _Ids(RandomIdGenerator):
    """Random ids, except the next ones when they were chosen in advance: an attempt's span
    id, already sent upstream in its `traceparent`; a new trace's id, already sampled."""

    def __init__(self) -> None:
        self.next_span_id: int | None = None
        self.next_trace_id: int | None = None

    def generate_span_id(self) -> int:
        chosen, self.next_span_id = self.next_span_id, None
        return chosen if chosen is not None else super().generate_span_id()

    def generate_trace_id(self) -> int:
        chosen, self.next_trace_id = self.next_trace_id, None
        return chosen if chosen is not None else super().generate_trace_id()


_CURRENT: ContextVar[RequestTrace | None] = ContextVar("llm_gateway_request_trace", default=None)
_ATTEMPT: ContextVar[int | None] = ContextVar("llm_gateway_attempt_span_id", default=None)


def current() -> RequestTrace | None:
    """The trace of the request this code runs for, if it is traced."""
    return _CURRENT.get()


def current_trace_id() -> str | None:
    """The W3C trace id of the request this code runs for (sampled out or not: the id still
    travels upstream), for its access line."""
    request = _CURRENT.get()
    return request.trace_hex() if request is not None else None


class Tracing:
    """The process's tracer, exporters and (with `metrics: true`) GenAI metric instruments."""

    def __init__(
        self,
        settings: TracingSettings,
        providers: Mapping[str, str],
        spans: SpanExporter | None = None,
        addresses: Mapping[str, tuple[str, int]] | None = None,
    ) -> None:
        """`providers`: each provider account's `gen_ai.provider.name`; `addresses`: its
        upstream host and port, where it has a `base_url`. `spans` replaces the OTLP exporter
        (an embedding application's own)."""
        self.settings = settings
        self._providers = dict(providers)
        self._addresses = dict(addresses or {})
        # One instance id per process: `serve --workers N` exports N cumulative metric streams.
        resource = Resource.create(
            {
                "service.name": settings.service_name,
                "service.version": __version__,
                "service.instance.id": os.urandom(8).hex(),
            }
        )
        ratio = TraceIdRatioBased(settings.sample_ratio)
        sampler = ParentBased(ratio)
        self._bound = ratio.bound
        self._ids = _Ids()
        self._provider = TracerProvider(resource=resource, sampler=sampler, id_generator=self._ids)
        self._provider.add_span_processor(BatchSpanProcessor(spans or span_exporter(settings)))
        self._tracer = self._provider.get_tracer("llm_gateway", __version__)
        self.metrics = GenAIMetrics(settings, resource) if settings.metrics else None

    def begin(
        self, headers: Iterable[tuple[bytes, bytes]], dialect: str, method: str, path: str
    ) -> RequestTrace:
        """Start the server span of a request to `path` (a front door), continuing the
        client's trace, and make it current."""
        carrier = {_CARRIED[name]: value.decode("latin-1") for name, value in headers if name in _CARRIED}
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        operation = OPERATIONS.get(dialect, dialect)
        request = self._dropped(operation, parent)
        if request is None:
            span = self._tracer.start_span(
                operation,
                context=parent or Context(),  # the client's trace or a new one, never an ambient span
                kind=SpanKind.SERVER,
                attributes={
                    "gen_ai.operation.name": operation,
                    "http.request.method": method,
                    "url.path": path,
                },
            )
            ids = span.get_span_context()
            tracestate = ids.trace_state.to_header() if ids.trace_state else ""
            request = RequestTrace(operation, span, (ids.trace_id, ids.span_id, ids.trace_flags), tracestate)
        request.token = _CURRENT.set(request)
        return request

    def _dropped(self, operation: str, parent: Context | None) -> RequestTrace | None:
        """The trace of a request the sampler drops, without a span: the SDK's `start_span`
        costs several times more, on every request a low `sample_ratio` drops. The decision is
        the sampler's own (parent-based, then the trace id against the ratio's bound); a new
        trace it keeps is started by the SDK with the trace id drawn here. None: recorded."""
        remote = trace.get_current_span(parent).get_span_context() if parent is not None else None
        if remote is not None and remote.is_valid:
            if remote.trace_flags.sampled:
                return None
            tracestate = remote.trace_state.to_header() if remote.trace_state else ""
            flags = remote.trace_flags & ~trace.TraceFlags.SAMPLED
            return RequestTrace(operation, None, (remote.trace_id, _span_id(), flags), tracestate)
        trace_id = random.getrandbits(128) or 1
        if trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < self._bound:
            self._ids.next_trace_id = trace_id
            return None
        return RequestTrace(operation, None, (trace_id, _span_id(), trace.TraceFlags.RANDOM_TRACE_ID))

    def end(self, request: RequestTrace, state: Mapping[str, Any], status: int) -> None:
        """End the server span with what the request left in `scope["state"]` (its context and
        the error it was answered with) and the status sent; record the request's metrics."""
        if request.token is not None:
            _CURRENT.reset(request.token)
            request.token = None
        ctx: RequestContext | None = state.get("context")
        error: BaseException | None = state.get("error")
        call: Call | None = ctx.extras.get(CALL) if ctx is not None else None
        if self.metrics is not None and ctx is not None:
            self.metrics.request(ctx, request.operation, call, error, self._providers)
        span = request.span
        if span is None:
            return
        answer = ctx.extras.get(ANSWER) if ctx is not None else None
        span.set_attributes(server_attributes(ctx, call, answer, error, status, self._providers))
        if call is not None:
            span.update_name(span_name(request.operation, call.model))
            if self.settings.capture_content:
                self._content(span, call, answer)
        # A 5xx, or a stream that failed after its 200 by the gateway's or an upstream's fault.
        if status >= 500 or (isinstance(error, GatewayError) and error.status_code >= 500):
            span.set_status(Status(StatusCode.ERROR, error_type(error) or str(status)))
        span.end()

    @staticmethod
    def _content(span: trace.Span, call: Call, answer: Any) -> None:
        prompt = input_messages(call.body)
        if prompt is not None:
            span.set_attribute("gen_ai.input.messages", prompt)
        completion = output_messages(answer)
        if completion is not None:
            span.set_attribute("gen_ai.output.messages", completion)

    def on_attempt(self, report: Attempt) -> None:
        """An `AttemptObserver`: the attempt as a client span under the request's server span."""
        request = _CURRENT.get()
        operation = request.operation if request is not None else "chat"
        if self.metrics is not None:
            self.metrics.attempt(report, operation, self._providers)
        if request is None or request.context is None:
            return
        end = time.time_ns()
        attributes = attempt_attributes(report, operation, self._providers)
        address = self._addresses.get(report.provider)
        if address is not None:
            attributes["server.address"], attributes["server.port"] = address
        self._ids.next_span_id = request.claim(report.provider)
        span = self._tracer.start_span(
            span_name(operation, report.model),
            context=request.context,
            kind=SpanKind.CLIENT,
            start_time=end - int(report.latency * 1e9),
            attributes=attributes,
        )
        if report.error is not None:
            span.set_status(Status(StatusCode.ERROR, attributes["error.type"]))
        span.end(end_time=end)

    @staticmethod
    def upstream_headers(provider: str, headers: Mapping[str, str]) -> Mapping[str, str]:
        """`headers` with the current request's `traceparent` (and `tracestate`), if traced:
        naming the attempt's span-to-be when the request is recorded, else the server span."""
        request = _CURRENT.get()
        if request is None:
            return headers
        if request.context is None:
            traceparent = request.traceparent()
        else:
            span_id = _span_id()
            _ATTEMPT.set(span_id)
            request.sent.setdefault(provider, []).append(span_id)
            traceparent = request.traceparent(span_id)
        if request.tracestate:
            return {**headers, "traceparent": traceparent, "tracestate": request.tracestate}
        return {**headers, "traceparent": traceparent}

    def shutdown(self) -> None:
        """Export what is queued and stop the exporters' threads. Blocking (up to the export
        timeout): the runtime calls it off the event loop, after the server drained."""
        self._provider.shutdown()
        if self.metrics is not None:
            self.metrics.shutdown()


def _span_id() -> int:
    return random.getrandbits(64) or 1


def span_exporter(settings: TracingSettings) -> SpanExporter:
    endpoint = settings.otlp_endpoint.get_secret_value()
    headers = dict(settings.headers)
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans

        return GrpcSpans(
            endpoint=endpoint,
            insecure=endpoint.startswith("http://"),
            headers=headers,
            timeout=settings.export_timeout,
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(
        endpoint=f"{endpoint.rstrip('/')}/v1/traces", headers=headers, timeout=settings.export_timeout
    )
