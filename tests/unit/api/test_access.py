"""The access middleware records every answer, the ones the middleware below it gives
(413, 421) and those no route gives (404) as well as the served ones."""

from __future__ import annotations

import logging

import pytest

from llm_gateway.observability.record import RequestRecord
from tests.stubs import mock_config
from tests.unit.api.asgi import CHAT, gateway


def records(caplog: pytest.LogCaptureFixture) -> list[RequestRecord]:
    return [r.access for r in caplog.records if r.name == "llm_gateway.access"]  # type: ignore[attr-defined]


async def test_every_answer_gets_one_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llm_gateway.access")
    config = mock_config(server={"max_request_bytes": 2048})
    async with gateway(config) as client:
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        big = {**CHAT, "pad": "x" * 4096}
        assert (await client.post("/v1/chat/completions", json=big)).status_code == 413
        assert (
            await client.post("/v1/chat/completions", json=CHAT, headers={"host": "evil.example"})
        ).status_code == 421
        assert (await client.get("/nowhere")).status_code == 404
    found = records(caplog)
    assert [(r.status, r.error_type) for r in found] == [
        (200, None),
        (413, "payload_too_large"),
        (421, "caller_error"),
        (404, "not_found"),
    ]
    served = found[0]
    assert (served.model, served.provider, served.front_door, served.attempts) == (
        "mock",
        "mock",
        "openai.chat",
        1,
    )
    assert served.upstream is not None and served.overhead is not None
    assert served.latency >= served.upstream


async def test_nothing_is_installed_when_logs_and_metrics_are_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llm_gateway.access")
    config = mock_config(logging={"access": False}, metrics={"enabled": False})
    async with gateway(config) as client:
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        assert (await client.get("/metrics")).status_code == 404
    assert records(caplog) == []
