"""A recording reverse proxy put between a real client (a coding-agent CLI) and the gateway.

The gateway keeps no per-request log, and an agent's own requests are what a conformance
test must see: this proxy forwards every request unchanged to `target` (the gateway),
streams the answer back as it comes, and keeps what the client sent and the status the
gateway answered, so a test can fail on any 4xx and record a golden transcript.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class Exchange:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    answer: bytes = b""
    """The gateway's answer body when it was an error (status >= 400), for the failure message."""


@dataclass
class RecordingProxy:
    target: str = ""
    exchanges: list[Exchange] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        return app

    def reset(self) -> None:
        self.exchanges.clear()

    def errors(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.status >= 400]

    async def forward(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode(errors="replace")
        exchange = Exchange(request.method, request.path, dict(request.headers), body)
        self.exchanges.append(exchange)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        timeout = aiohttp.ClientTimeout(total=120)
        async with (
            aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session,
            session.request(
                request.method, self.target + request.path_qs, headers=headers, data=raw
            ) as upstream,
        ):
            exchange.status = upstream.status
            answer = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS},
            )
            await answer.prepare(request)
            async for chunk in upstream.content.iter_any():
                if upstream.status >= 400:
                    exchange.answer += chunk
                await answer.write(chunk)
            await answer.write_eof()
            return answer
