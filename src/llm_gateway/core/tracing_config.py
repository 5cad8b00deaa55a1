"""Configuration of OpenTelemetry traces (and, optionally, the OTel GenAI metrics) exported
over OTLP (docs/observability.md, "Traces"). Absent: nothing is installed on the request path."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from llm_gateway.core.secrets import SecretHeaders, SecretUrl
from llm_gateway.core.strict import Seconds, StrictModel


class TracingSettings(StrictModel):
    """Where spans go and how many: a server span per request, a client span per upstream
    attempt, following the OpenTelemetry GenAI semantic conventions."""

    otlp_endpoint: SecretUrl
    """The collector. `http/protobuf`: its base URL (`http://collector:4318`; `/v1/traces` and
    `/v1/metrics` are appended, as `OTEL_EXPORTER_OTLP_ENDPOINT` is read); `grpc`: its address
    (`http://collector:4317`). A secret type: a URL may carry a token."""
    protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"
    sample_ratio: Annotated[float, Field(ge=0, le=1)] = 1.0
    """The share of new traces recorded; a client's `traceparent` decision is kept (parent-based)."""
    service_name: Annotated[str, Field(min_length=1)] = "llm-gateway"
    headers: SecretHeaders = SecretHeaders()
    """Sent with every export (`authorization`, an API key header): values never shown."""
    capture_content: bool = False
    """Put prompts and completions on the server span (`gen_ai.input.messages`,
    `gen_ai.output.messages`). Off: no content ever leaves the gateway in a span."""
    metrics: bool = False
    """Also export the OTel GenAI metric instruments (`gen_ai.client.token.usage`, ...) over OTLP."""
    metrics_interval: Seconds = 60.0
    """Seconds between metric exports."""
    export_timeout: Seconds = 10.0
    """Seconds one export may take before it is dropped (exports run off the event loop)."""
