"""The drain's gauges and log lines: set when the shutdown signal arrives, kept current while
requests finish, back to zero when the lifespan ends."""

from __future__ import annotations

import asyncio
import logging

import pytest

from llm_gateway.observability.draining import Drain
from llm_gateway.observability.metrics import Metrics
from tests.unit.observability.test_metrics import value


async def test_a_drain_counts_down_the_requests_it_finishes(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    running = [3]
    drain = Drain(lambda: running[0], metrics, timeout=30, poll=0.01)
    assert value(metrics, "llm_gateway_draining") == 0
    with caplog.at_level(logging.INFO, "llm_gateway.shutdown"):
        drain.begin()
        drain.begin()  # a second signal starts nothing new
        assert value(metrics, "llm_gateway_draining") == 1
        assert value(metrics, "llm_gateway_draining_requests") == 3
        running[0] = 1
        await asyncio.sleep(0.05)
        assert value(metrics, "llm_gateway_draining_requests") == 1
        running[0] = 0
        drain.end()
    assert value(metrics, "llm_gateway_draining") == value(metrics, "llm_gateway_draining_requests") == 0
    messages = [record.getMessage() for record in caplog.records]
    assert (
        messages[0] == "draining: 3 request(s) in flight, waiting up to 30 s for them (server.drain_timeout)"
    )
    assert messages[1].startswith("drained in ") and len(messages) == 2


async def test_a_lifespan_that_ends_without_a_signal_logs_no_drain(caplog: pytest.LogCaptureFixture) -> None:
    drain = Drain(lambda: 0, None, timeout=30)
    with caplog.at_level(logging.INFO, "llm_gateway.shutdown"):
        drain.end()
        drain.begin()  # too late: the lifespan is over
    assert not caplog.records and not drain.draining
