"""`Tracing` with an in-memory exporter: the request's server span is current while it is
served, attempts become its children with their real times, upstream headers carry it; and
with tracing unconfigured the app installs no middleware, hook or observer at all."""

from __future__ import annotations

import time

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from llm_gateway.api.middleware.access import AccessMiddleware
from llm_gateway.api.middleware.tracing import TracingMiddleware
from llm_gateway.app import create_app
from llm_gateway.core.context import Principal, RequestContext
from llm_gateway.core.errors import UpstreamTimeout
from llm_gateway.core.tracing_config import TracingSettings
from llm_gateway.observability.tracing import Tracing, current
from llm_gateway.routing.observers import AttemptReport, Outcome
from llm_gateway.runtime import Runtime
from llm_gateway.services.tracing import TracingHook
from tests.stubs import mock_config

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def tracing(exporter: InMemorySpanExporter, ratio: float = 1.0) -> Tracing:
    settings = TracingSettings(otlp_endpoint="http://127.0.0.1:9", sample_ratio=ratio)
    return Tracing(settings, {"main": "openai"}, spans=exporter)


def report(number: int, error: UpstreamTimeout | None = None) -> AttemptReport:
    outcome = Outcome.FAILED if error else Outcome.ANSWERED
    return AttemptReport("gpt", "gpt#0", "main", "gpt-4o", number, outcome, 0.25, None, False, False, error)


def test_attempts_are_children_of_the_current_request_and_upstreams_get_its_traceparent() -> None:
    exporter = InMemorySpanExporter()
    traced = tracing(exporter)
    headers = [(b"traceparent", f"00-{TRACE_ID}-{PARENT}-01".encode())]
    request = traced.begin(headers, "openai.chat", "POST", "/v1/chat/completions")
    assert current() is request
    sent = traced.upstream_headers("main", {"authorization": "Bearer x"})
    traced.on_attempt(report(1, UpstreamTimeout("slow")))
    traced.on_attempt(report(2))  # an attempt that sent nothing upstream (no HTTP)
    ctx = RequestContext("req-9", Principal("master", key_id="master"), "openai.chat")
    traced.end(request, {"context": ctx}, 200)
    assert current() is None
    assert traced.upstream_headers("main", {"a": "b"}) == {"a": "b"}
    traced.shutdown()

    spans = {span.name: span for span in exporter.get_finished_spans()}
    server = spans["chat"]
    assert server.kind is SpanKind.SERVER
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    assert server.parent is not None and f"{server.parent.span_id:016x}" == PARENT
    clients = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert sent["traceparent"] == f"00-{TRACE_ID}-{clients[0].context.span_id:016x}-01"
    assert sent["authorization"] == "Bearer x"
    assert clients[1].context.span_id != clients[0].context.span_id
    assert [s.attributes["llm_gateway.attempt"] for s in clients] == [1, 2]  # type: ignore[index]
    assert all(s.parent is not None and s.parent.span_id == server.context.span_id for s in clients)
    assert clients[0].attributes["error.type"] == "upstream_timeout"  # type: ignore[index]
    first = clients[0]
    assert first.end_time is not None and first.start_time is not None
    assert abs((first.end_time - first.start_time) / 1e9 - 0.25) < 0.01
    assert first.end_time <= time.time_ns()


def test_a_sampled_out_request_records_nothing_but_still_propagates() -> None:
    exporter = InMemorySpanExporter()
    traced = tracing(exporter, ratio=0.0)
    request = traced.begin([], "openai.chat", "POST", "/v1/chat/completions")
    sent = traced.upstream_headers("main", {})
    traced.on_attempt(report(1))
    traced.end(request, {}, 200)
    traced.shutdown()
    assert exporter.get_finished_spans() == ()
    assert int(sent["traceparent"].rsplit("-", 1)[1], 16) & 1 == 0
    assert request.span is None
    assert sent["traceparent"].split("-")[2] == f"{request.span_id:016x}"


async def test_without_tracing_nothing_is_installed() -> None:
    config = mock_config()
    app = create_app(config)
    assert not any(m.cls is TracingMiddleware for m in app.user_middleware)
    assert [m.kwargs["traced"] for m in app.user_middleware if m.cls is AccessMiddleware] == [None]
    runtime = Runtime.build(config)
    assert runtime.tracing is None
    assert not any(isinstance(hook, TracingHook) for hook in runtime.hooks.hooks)
    assert not any(
        isinstance(o, Tracing) for o in runtime.executor._observers
    )  # (the access log's timing stays)
    await runtime.aclose()


async def test_with_tracing_the_middleware_hook_and_observer_are_installed() -> None:
    config = mock_config(tracing={"otlp_endpoint": "http://127.0.0.1:9", "export_timeout": 1})
    app = create_app(config)
    # The access middleware traces the front doors where it is installed (one layer, not two) ...
    assert not any(m.cls is TracingMiddleware for m in app.user_middleware)
    assert [m.kwargs["traced"] is not None for m in app.user_middleware if m.cls is AccessMiddleware] == [
        True
    ]
    # ... and the tracing middleware does where access log and metrics are both off.
    quiet = mock_config(
        tracing={"otlp_endpoint": "http://127.0.0.1:9", "export_timeout": 1},
        logging={"access": False},
        metrics={"enabled": False},
    )
    assert any(m.cls is TracingMiddleware for m in create_app(quiet).user_middleware)
    runtime = Runtime.build(config)
    assert runtime.tracing is not None
    assert isinstance(runtime.hooks.hooks[0], TracingHook)
    assert [o for o in runtime.executor._observers if isinstance(o, Tracing)] == [runtime.tracing]
    await runtime.aclose()


def test_the_sampling_decision_is_the_samplers_own() -> None:
    """Parent-based, then the trace id against the ratio: what the SDK's sampler decides,
    made before its `start_span`, for new traces and continued ones alike."""
    exporter = InMemorySpanExporter()
    traced = tracing(exporter, ratio=0.5)
    bound = round(0.5 * 2**64)
    recorded = []
    for _ in range(400):
        request = traced.begin([], "openai.chat", "POST", "/v1/chat/completions")
        kept = request.span is not None
        assert kept == (request.trace_id & (2**64 - 1) < bound)
        assert bool(request.flags & 1) == kept
        if kept:
            assert request.span is not None and request.span.get_span_context().trace_id == request.trace_id
        recorded.append(kept)
        traced.end(request, {}, 200)
    assert 100 < sum(recorded) < 300
    kept = traced.begin([(b"traceparent", f"00-{TRACE_ID}-{PARENT}-01".encode())], "openai.chat", "POST", "/")
    dropped = traced.begin(
        [(b"traceparent", f"00-{'1' * 32}-{PARENT}-00".encode())], "openai.chat", "POST", "/"
    )
    assert kept.span is not None and kept.span.is_recording() and dropped.span is None
    assert f"{dropped.trace_id:032x}" == "1" * 32
    traced.end(dropped, {}, 200)
    traced.end(kept, {}, 200)
    traced.shutdown()
    assert len(exporter.get_finished_spans()) == sum(recorded) + 1
