"""FastAPI's own OpenTelemetry stays off: the gateway traces its requests itself, and
FastAPI's per-request check for a configured provider cost ~4.6 µs a request."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from opentelemetry import trace

from llm_gateway.app import NO_FASTAPI_TELEMETRY, create_app
from tests.stubs import mock_config


def test_fastapis_telemetry_is_off_and_never_looks_for_a_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    if not NO_FASTAPI_TELEMETRY:
        pytest.skip("this FastAPI has no native telemetry")
    lookups: list[str] = []
    get_provider = trace.get_tracer_provider

    def counting() -> Any:
        lookups.append("tracer provider")
        return get_provider()

    monkeypatch.setattr(trace, "get_tracer_provider", counting)
    assert not FastAPI()._native_telemetry.enabled()
    assert lookups  # a plain FastAPI app looks for a provider on every request
    lookups.clear()
    assert not create_app(mock_config())._native_telemetry.enabled()
    assert lookups == []  # the gateway's decides from its config alone
