"""Writes within one event-loop turn leave as one; closing sends what is pending first."""

from __future__ import annotations

import asyncio
from typing import Any

from llm_gateway.api.coalesce import CoalescingTransport


class Recorder:
    """A transport that records each write it is asked for (one per system call)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1234) if name == "peername" else default


def wrapped() -> tuple[CoalescingTransport, Recorder]:
    inner = Recorder()
    return CoalescingTransport(inner, asyncio.get_running_loop()), inner  # type: ignore[arg-type]


async def test_writes_in_one_turn_leave_together_in_order() -> None:
    transport, inner = wrapped()
    for part in (b"head ", b"event-1 ", b"event-2"):
        transport.write(part)
    assert inner.writes == []  # nothing sent while the writer still runs
    await asyncio.sleep(0)
    assert inner.writes == [b"head event-1 event-2"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert inner.writes == [b"head event-1 event-2", b"next"]


async def test_flush_sends_now_and_close_flushes_first() -> None:
    transport, inner = wrapped()
    transport.write(b"the end")
    transport.flush()
    assert inner.writes == [b"the end"]
    transport.write(b"last words")
    transport.close()
    assert inner.writes == [b"the end", b"last words"] and inner.closed
    await asyncio.sleep(0)  # the flush scheduled for "last words" finds nothing left
    assert inner.writes == [b"the end", b"last words"]


async def test_abort_drops_what_is_pending_and_a_closed_transport_gets_nothing() -> None:
    transport, inner = wrapped()
    transport.write(b"never")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.writes == [] and inner.aborted
    transport, inner = wrapped()
    transport.write(b"too late")
    inner.closed = True  # the peer went away before the loop turn ended
    await asyncio.sleep(0)
    assert inner.writes == []


async def test_everything_else_is_the_transports() -> None:
    transport, _ = wrapped()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1234)
    assert not transport.is_closing()
