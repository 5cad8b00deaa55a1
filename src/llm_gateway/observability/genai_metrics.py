"""The OpenTelemetry GenAI metric instruments, exported over OTLP with `tracing.metrics: true`.

    gen_ai.client.operation.duration   s        one upstream attempt (the gateway is the client)
    gen_ai.client.token.usage          {token}  per request, `gen_ai.token.type` input | output
    gen_ai.server.request.duration     s        one request, as the gateway served it
    gen_ai.server.time_to_first_token  s        streams: arrival to the first chunk

Recorded for every request, sampled or not (metrics do not sample). Bucket boundaries are
the conventions' advice. Readings are aggregated in memory and exported from the reader's
thread every `metrics_interval` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.tracing_config import TracingSettings
from llm_gateway.observability.record import error_type
from llm_gateway.observability.spans import Attempt, Attributes

DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]


class GenAIMetrics:
    def __init__(self, settings: TracingSettings, resource: Resource) -> None:
        reader = PeriodicExportingMetricReader(
            metric_exporter(settings),
            export_interval_millis=settings.metrics_interval * 1000,
            export_timeout_millis=settings.export_timeout * 1000,
        )
        self._provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = self._provider.get_meter("llm_gateway")
        self._operation = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._request = meter.create_histogram(
            "gen_ai.server.request.duration",
            unit="s",
            description="GenAI server request duration (to the last byte sent).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._ttft = meter.create_histogram(
            "gen_ai.server.time_to_first_token",
            unit="s",
            description="Time to generate first token for successful responses.",
            explicit_bucket_boundaries_advisory=TTFT_BUCKETS,
        )

    def attempt(self, report: Attempt, operation: str, providers: Mapping[str, str]) -> None:
        attributes: Attributes = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": providers.get(report.provider, report.provider),
            "gen_ai.request.model": report.model,
        }
        kind = error_type(report.error)
        if kind is not None:
            attributes["error.type"] = kind
        self._operation.record(report.latency, attributes)

    def request(
        self,
        ctx: RequestContext,
        operation: str,
        call: Call | None,
        error: BaseException | None,
        providers: Mapping[str, str],
    ) -> None:
        attributes: Attributes = {"gen_ai.operation.name": operation}
        if call is not None and call.model:
            attributes["gen_ai.request.model"] = call.model
        route = ctx.route
        if route is not None:
            attributes["gen_ai.provider.name"] = providers.get(route.provider, route.provider)
            attributes["gen_ai.response.model"] = route.model
        kind = error_type(error)
        if kind is not None:
            attributes["error.type"] = kind
        self._request.record(time.monotonic() - ctx.started, attributes)
        if ctx.first_chunk_at is not None and error is None:
            self._ttft.record(ctx.first_chunk_at - ctx.started, attributes)
        usage = ctx.usage
        if usage:
            self._tokens.record(
                int(usage.get("prompt_tokens") or 0), {**attributes, "gen_ai.token.type": "input"}
            )
            self._tokens.record(
                int(usage.get("completion_tokens") or 0), {**attributes, "gen_ai.token.type": "output"}
            )

    def shutdown(self) -> None:
        self._provider.shutdown()


def metric_exporter(settings: TracingSettings) -> MetricExporter:
    endpoint = settings.otlp_endpoint.get_secret_value()
    headers = dict(settings.headers)
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetrics,
        )

        return GrpcMetrics(
            endpoint=endpoint,
            insecure=endpoint.startswith("http://"),
            headers=headers,
            timeout=settings.export_timeout,
        )
    return OTLPMetricExporter(
        endpoint=f"{endpoint.rstrip('/')}/v1/metrics", headers=headers, timeout=settings.export_timeout
    )
