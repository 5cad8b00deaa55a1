"""Every request gets an id: the client's `x-request-id` (up to 128 bytes) or a fresh one,
kept in `scope["state"]["request_id"]` and echoed on the response."""

from __future__ import annotations

import itertools
import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID = b"x-request-id"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # A random per-process prefix and a counter. uuid4 per request was a visible cost
        # in profiles (a getrandom syscall each time); this is unique enough.
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = b""
        for name, value in scope["headers"]:
            if name == REQUEST_ID:
                request_id = value[:128]
                break
        request_id = request_id or f"{self._prefix}{next(self._counter):016x}".encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode("latin-1")
        id_header = (REQUEST_ID, request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        await self.app(scope, receive, send_with_id)
