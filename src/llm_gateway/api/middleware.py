"""Pure-ASGI middleware for what every request gets: a request id and the gateway's own limits.

The server underneath accepts megabytes of headers and any body size; these limits are
enforced here, before any handler runs (headers, declared Content-Length) or while the
body is read (chunked uploads).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_gateway.api.anthropic import error_body as anthropic_error_body
from llm_gateway.core.errors import GatewayError, HeadersTooLarge, PayloadTooLarge

REQUEST_ID = b"x-request-id"
ANTHROPIC_PREFIX = "/v1/messages"


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, max_request_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_header_bytes = max_header_bytes
        # Request ids: a random per-process prefix and a counter. uuid4 per request was a
        # visible cost in profiles (a getrandom syscall each time); this is unique enough.
        self._id_prefix = os.urandom(8).hex()
        self._id_counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = b""
        declared = -1
        header_bytes = 0
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value) + 4
            if name == REQUEST_ID:
                request_id = value[:128]
            elif name == b"content-length" and value.isdigit():
                declared = int(value)
        request_id = request_id or f"{self._id_prefix}{next(self._id_counter):016x}".encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode("latin-1")
        id_header = (REQUEST_ID, request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        if header_bytes > self.max_header_bytes:
            await reject(
                scope,
                send_with_id,
                HeadersTooLarge(
                    f"request headers total {header_bytes} bytes; the limit is {self.max_header_bytes}"
                ),
            )
            return
        if declared > self.max_request_bytes:
            await reject(scope, send_with_id, self._too_large())
            return
        await self.app(scope, self._counting(receive), send_with_id)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body is larger than the limit of {self.max_request_bytes} bytes")

    def _counting(self, receive: Receive) -> Receive:
        received = 0
        limit = self.max_request_bytes

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise self._too_large()
            return message

        return counted


async def reject(scope: Scope, send: Send, error: GatewayError) -> None:
    """Answer without running the app, for limits checked before routing; in the error
    shape the route's own clients parse (Anthropic's on the Anthropic front door)."""
    if scope["path"].startswith(ANTHROPIC_PREFIX):
        body = orjson.dumps(anthropic_error_body(error, scope["state"].get("request_id")))
    else:
        body = orjson.dumps(error.to_body())
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": error.status_code, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
