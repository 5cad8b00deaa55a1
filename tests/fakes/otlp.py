"""A real OTLP receiver on loopback: what an OpenTelemetry collector would be sent.

`FakeOTLP` accepts `POST /v1/traces` and `POST /v1/metrics` in `application/x-protobuf`
(gzip or not), decodes them with `opentelemetry-proto` (`ExportTraceServiceRequest`,
`ExportMetricsServiceRequest`) and keeps every span and metric point as plain values,
with the resource's `service.name`, so tests can tell gateways apart. `GrpcOTLP` serves
the OTLP/gRPC trace service into the same store.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

KINDS = {ProtoSpan.SPAN_KIND_SERVER: "server", ProtoSpan.SPAN_KIND_CLIENT: "client"}


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def attributes_of(pairs: Any) -> dict[str, Any]:
    return {pair.key: value_of(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass(frozen=True)
class Span:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    attributes: dict[str, Any]
    status: int
    """0 unset, 1 ok, 2 error."""
    start: int
    end: int
    resource: dict[str, Any]


@dataclass(frozen=True)
class Point:
    service: str
    metric: str
    unit: str
    attributes: dict[str, Any]
    count: int
    sum: float


@dataclass
class FakeOTLP:
    spans: list[Span] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    """Every export's request headers (the configured `tracing.headers` arrive here)."""
    raw: list[bytes] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self.traces)
        app.router.add_post("/v1/metrics", self.metrics)
        return app

    async def _body(self, request: web.Request) -> bytes:
        body = await request.read()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        with self._lock:
            self.headers.append(dict(request.headers))
            self.raw.append(body)
        return body

    async def traces(self, request: web.Request) -> web.Response:
        self.keep(ExportTraceServiceRequest.FromString(await self._body(request)))
        return _protobuf(ExportTraceServiceResponse().SerializeToString())

    def keep(self, export: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in export.resource_spans:
            resource = attributes_of(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        Span(
                            service=str(resource.get("service.name")),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=KINDS.get(span.kind, str(span.kind)),
                            attributes=attributes_of(span.attributes),
                            status=span.status.code,
                            start=span.start_time_unix_nano,
                            end=span.end_time_unix_nano,
                            resource=resource,
                        )
                    )
        with self._lock:
            self.spans.extend(spans)

    async def metrics(self, request: web.Request) -> web.Response:
        export = ExportMetricsServiceRequest.FromString(await self._body(request))
        points = []
        for resource_metrics in export.resource_metrics:
            service = str(attributes_of(resource_metrics.resource.attributes).get("service.name"))
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.WhichOneof("data") != "histogram":
                        continue
                    for point in metric.histogram.data_points:
                        points.append(
                            Point(
                                service,
                                metric.name,
                                metric.unit,
                                attributes_of(point.attributes),
                                point.count,
                                point.sum,
                            )
                        )
        with self._lock:
            self.points.extend(points)
        return _protobuf(ExportMetricsServiceResponse().SerializeToString())

    def reset(self) -> None:
        with self._lock:
            self.spans.clear()
            self.points.clear()
            self.headers.clear()
            self.raw.clear()

    def wait_for_spans(
        self, match: Callable[[Span], bool], count: int = 1, timeout: float = 10.0
    ) -> list[Span]:
        """The received spans that `match`, once there are at least `count` (or at the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [span for span in self.spans if match(span)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def wait_for_points(self, match: Callable[[Point], bool], timeout: float = 10.0) -> list[Point]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [point for point in self.points if match(point)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def _protobuf(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/x-protobuf")


class GrpcOTLP(TraceServiceServicer):  # type: ignore[misc]
    """The OTLP/gRPC trace service on a free loopback port, keeping spans in `store`."""

    def __init__(self, store: FakeOTLP) -> None:
        self.store = store
        self._server = grpc.server(ThreadPoolExecutor(max_workers=2))
        add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def Export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
        with self.store._lock:
            self.store.headers.append(dict(context.invocation_metadata()))
            self.store.raw.append(request.SerializeToString())
        self.store.keep(request)
        return ExportTraceServiceResponse()

    def start(self) -> GrpcOTLP:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)
