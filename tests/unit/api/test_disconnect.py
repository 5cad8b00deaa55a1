"""Watching for a client that went away: only once the work has run a while, and then its
work is cancelled and the request answered as a disconnect."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llm_gateway.api.disconnect import WATCH_AFTER, ClientDisconnected, until_disconnected


class Client:
    """An ASGI `receive` after the body: nothing until the client leaves."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()
        self.receives = 0

    async def receive(self) -> dict[str, Any]:
        self.receives += 1
        await self.gone.wait()
        return {"type": "http.disconnect"}


async def test_a_quick_answer_never_watches_the_client() -> None:
    client = Client()

    async def work() -> str:
        await asyncio.sleep(0)
        return "answer"

    assert await until_disconnected(client.receive, work()) == "answer"
    await asyncio.sleep(WATCH_AFTER * 2)
    assert client.receives == 0


async def test_a_client_gone_early_cancels_long_work_once_watched() -> None:
    client = Client()
    cancelled = asyncio.Event()

    async def work() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    client.gone.set()  # before the watch starts: the server keeps the disconnect
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ClientDisconnected):
        await until_disconnected(client.receive, work())
    assert cancelled.is_set() and client.receives == 1
    assert WATCH_AFTER <= loop.time() - started < 5


async def test_the_watcher_ends_with_the_work() -> None:
    client = Client()

    async def work() -> str:
        await asyncio.sleep(WATCH_AFTER * 3)
        return "answer"

    before = len(asyncio.all_tasks())
    assert await until_disconnected(client.receive, work()) == "answer"
    await asyncio.sleep(0)
    assert client.receives == 1 and len(asyncio.all_tasks()) == before
