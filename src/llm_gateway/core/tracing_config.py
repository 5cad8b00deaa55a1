"""Configuration of OpenTelemetry traces (and, optionally, the OTel GenAI metrics) exported
over OTLP (docs/observability.md, "Traces"). Absent: nothing is installed on the request path."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

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

    @field_validator("otlp_endpoint")
    @classmethod
    def _no_query(cls, endpoint: SecretUrl) -> SecretUrl:
        """Signal paths are appended to the endpoint, and an exporter's error names the URL it
        posted to: a query (a token in it) would break the one and show in the other."""
        parts = urlsplit(endpoint.get_secret_value())
        if parts.query or parts.fragment:
            raise ValueError("must carry no query or fragment; send credentials in tracing.headers")
        return endpoint
