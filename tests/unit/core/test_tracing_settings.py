"""The `tracing:` block: off by default, validated strictly, its secrets never shown."""

from __future__ import annotations

import pytest

from llm_gateway.core.loader import ConfigError
from llm_gateway.runtime import tracing_problem
from tests.stubs import mock_config

TOKEN = "otlp-secret-token-99"


def test_off_by_default() -> None:
    assert mock_config().tracing is None
    assert tracing_problem(mock_config()) is None


def test_defaults() -> None:
    tracing = mock_config(tracing={"otlp_endpoint": "http://collector:4318"}).tracing
    assert tracing is not None
    assert (tracing.protocol, tracing.sample_ratio, tracing.service_name) == (
        "http/protobuf",
        1.0,
        "llm-gateway",
    )
    assert (tracing.capture_content, tracing.metrics) == (False, False)


@pytest.mark.parametrize(
    "block",
    [
        {},
        {"otlp_endpoint": "collector:4318"},
        {"otlp_endpoint": "http://collector:4318/?token=abc"},
        {"otlp_endpoint": "http://c:4318", "protocol": "thrift"},
        {"otlp_endpoint": "http://c:4318", "sample_ratio": 1.5},
        {"otlp_endpoint": "http://c:4318", "sample_ratio": -0.1},
        {"otlp_endpoint": "http://c:4318", "service_name": ""},
        {"otlp_endpoint": "http://c:4318", "metrics_interval": 0},
        {"otlp_endpoint": "http://c:4318", "exporter": "zipkin"},
    ],
)
def test_bad_blocks_are_refused(block: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        mock_config(tracing=block)


def test_headers_and_endpoint_credentials_are_never_shown() -> None:
    config = mock_config(
        tracing={
            "otlp_endpoint": f"https://user:{TOKEN}@collector:4318/",
            "headers": {"authorization": f"Bearer {TOKEN}"},
        }
    )
    tracing = config.tracing
    assert tracing is not None
    for shown in (repr(tracing), str(tracing), str(tracing.model_dump()), tracing.model_dump_json()):
        assert TOKEN not in shown
    assert dict(tracing.headers) == {"authorization": f"Bearer {TOKEN}"}


def test_a_grpc_collector_is_checked_for_its_exporter() -> None:
    config = mock_config(tracing={"otlp_endpoint": "http://collector:4317", "protocol": "grpc"})
    assert tracing_problem(config) is None  # installed with the dev extra
