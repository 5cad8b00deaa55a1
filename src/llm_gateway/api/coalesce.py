"""A client connection's writes within one event-loop turn, sent as one.

uvicorn writes a response's head and its body separately, and a stream's every event as
its own chunk; on a socket each write is a `send()` system call. Relaying a 500-event
stream, that was the largest single cost in the gateway's profile (38% of its CPU under
`RequestResponseCycle.send`, bench/streams.py): an upstream read brings many events, and
each went out in a system call of its own. `CoalescingTransport` gathers what is written
until the code writing it yields to the event loop, then sends it in one call, in order.

The answer's last bytes are not held: `GatewayProtocol` flushes when a response completes,
so the client gets them before the gateway's bookkeeping (logs, metrics, spend) runs.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingTransport:
    """Wraps the connection's transport; anything but writing and closing is delegated."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        """Send what was written so far (a no-op when nothing is pending)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
