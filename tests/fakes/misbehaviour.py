"""Stream misbehaviour every fake offers on demand, chosen by the model id, so one contract
suite (tests/unit/providers/test_contract.py) can drive every provider the same way:

    early-end   send the answer but not its terminal event(s), then end the body cleanly
    drop        send the first event(s), then drop the connection mid-body
    drip        pad the answer with DRIP_EVENTS filler events DRIP_INTERVAL apart (a long
                answer), recording in `StreamLog` whether the client hung up before the end

A fake passes its answer as frames already encoded in its own wire format: `frames` (the
body), `terminal` (what ends the answer: `[DONE]`, `message_stop`, the finishing chunk,
`messageStop` + `metadata`), a `filler` frame, and `after`, how many frames come before
the point where filler may go and where a dropped connection drops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import web

EARLY_END, DROP, DRIP = "early-end", "drop", "drip"
MODELS = frozenset({EARLY_END, DROP, DRIP})
DRIP_EVENTS = 200
DRIP_INTERVAL = 0.02
"""A drip answer takes about four seconds: far longer than a test waits for a hang-up."""


@dataclass
class StreamLog:
    """Which misbehaving streams the client closed before the end, and which ran to it.

    Appended to from the fake's thread; read by the test's."""

    cancelled: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.cancelled.clear()
        self.completed.clear()


async def write_stream(
    request: web.Request,
    response: web.StreamResponse,
    frames: Sequence[bytes],
    terminal: Sequence[bytes],
    *,
    model: str,
    filler: bytes,
    after: int,
    log: StreamLog,
) -> web.StreamResponse:
    """Write a prepared `response` the way `model` (one of MODELS) asks."""
    body = list(frames)
    if model == DRIP:
        body[after:after] = [filler] * DRIP_EVENTS
    try:
        for index, frame in enumerate(body):
            if model == DROP and index == after:
                assert request.transport is not None
                request.transport.close()
                return response
            await response.write(frame)
            await asyncio.sleep(DRIP_INTERVAL if model == DRIP else 0)
        if model != EARLY_END:
            for frame in terminal:
                await response.write(frame)
        await response.write_eof()
    except asyncio.CancelledError:
        log.cancelled.append(model)
        raise
    log.completed.append(model)
    return response
