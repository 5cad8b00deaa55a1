"""How `serve` sets uvicorn up: the connection protocol everywhere, websockets off, and the
open-file limit raised (or reported) for `server.max_connections`."""

from __future__ import annotations

import logging
import pickle
import resource

import pytest

from llm_gateway.api import server as serving
from llm_gateway.api.protocol import GatewayProtocol
from llm_gateway.core.config import ServerSettings


def test_the_options_name_the_gateway_protocol_and_no_websockets() -> None:
    options = serving.uvicorn_options(ServerSettings(header_timeout=2, body_timeout=3, max_connections=7))
    assert options["ws"] == "none"
    assert options["http"].func is GatewayProtocol
    guard = options["http"].keywords["guard"]
    assert (guard.header_timeout, guard.body_timeout, guard.max_connections) == (2, 3, 7)


def test_idle_keep_alive_outlasts_a_load_balancers_by_default() -> None:
    """uvicorn closes an idle keep-alive connection after 5 s; a balancer that keeps its
    side open longer (AWS ALB: 60 s) then races the close and answers 502."""
    assert serving.uvicorn_options(ServerSettings())["timeout_keep_alive"] == 75
    assert serving.uvicorn_options(ServerSettings(keep_alive_timeout=2.5))["timeout_keep_alive"] == 2.5
    assert ServerSettings().max_connections >= 5000  # issue #14: 5,000 idle connections held


def test_the_protocol_factory_pickles_for_workers() -> None:
    """`serve --workers N` hands uvicorn's config, protocol included, to spawned processes."""
    factory = serving.uvicorn_options(ServerSettings(header_timeout=2))["http"]
    copy = pickle.loads(pickle.dumps(factory))
    assert copy.func is GatewayProtocol
    assert copy.keywords["guard"].header_timeout == 2


class Limits:
    def __init__(self, soft: int, hard: int, settable: bool = True) -> None:
        self.soft, self.hard, self.settable = soft, hard, settable

    def get(self, which: int) -> tuple[int, int]:
        return self.soft, self.hard

    def set(self, which: int, limits: tuple[int, int]) -> None:
        if not self.settable:
            raise ValueError("not allowed")
        self.soft = limits[0]


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Limits:
    fake = Limits(1024, 1024)
    monkeypatch.setattr(resource, "getrlimit", fake.get)
    monkeypatch.setattr(resource, "setrlimit", fake.set)
    return fake


def test_the_soft_limit_is_raised_to_the_hard_limit(limits: Limits, caplog: pytest.LogCaptureFixture) -> None:
    limits.hard = 65536
    assert serving.raise_fd_limit(1000) == 65536
    assert limits.soft == 65536
    assert not caplog.records


def test_a_limit_too_low_for_max_connections_is_reported(
    limits: Limits, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "llm_gateway.server")
    assert serving.raise_fd_limit(1000) == 1024
    assert "server.max_connections=1000 needs about 2256" in caplog.text


def test_a_limit_that_cannot_be_raised_is_reported(limits: Limits, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "llm_gateway.server")
    limits.hard, limits.settable = 65536, False
    assert serving.raise_fd_limit(1000) == 1024
    assert "could not raise the open-file limit" in caplog.text
    assert "raise `ulimit -n`" in caplog.text


def test_enough_descriptors_say_nothing(limits: Limits, caplog: pytest.LogCaptureFixture) -> None:
    assert serving.raise_fd_limit(100) == 1024
    assert not caplog.records
