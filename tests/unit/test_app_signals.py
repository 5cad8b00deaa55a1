"""The lifespan's drain announcement: chained before the server's own SIGTERM/SIGINT
handlers, which still run, and undone when the lifespan ends."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from llm_gateway.app import _announce_drain
from llm_gateway.observability.draining import Drain


@pytest.fixture
def server_handler() -> Iterator[list[int]]:
    """A SIGTERM handler standing in for uvicorn's; the signals it got."""
    received: list[int] = []

    def handle_exit(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    original = signal.signal(signal.SIGTERM, handle_exit)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, original)


async def test_sigterm_begins_the_drain_then_runs_the_servers_handler(server_handler: list[int]) -> None:
    drain = Drain(lambda: 2, None, timeout=5)
    previous = signal.getsignal(signal.SIGTERM)
    restore = _announce_drain(drain)
    assert signal.getsignal(signal.SIGTERM) is not previous
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(0.05)  # the handler runs between bytecodes; the drain on the loop after
    assert server_handler == [signal.SIGTERM]
    assert drain.draining
    restore()
    assert signal.getsignal(signal.SIGTERM) is previous


async def test_a_default_handler_is_left_alone() -> None:
    original = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        restore = _announce_drain(Drain(lambda: 0, None, timeout=5))
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        restore()
    finally:
        signal.signal(signal.SIGTERM, original)
