"""The gateway's own request limits, enforced before any handler runs (headers, a declared
Content-Length) or while the body is read (chunked uploads).

The server underneath accepts megabytes of headers and any body size. A request over a
limit is answered in the dialect of the route it hit (Anthropic's shape on `/v1/messages`),
looked up in the same route table that dispatches it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_gateway.api.routes import RouteTable
from llm_gateway.core.errors import GatewayError, HeadersTooLarge, PayloadTooLarge


class LimitsMiddleware:
    def __init__(
        self, app: ASGIApp, *, routes: RouteTable, max_request_bytes: int, max_header_bytes: int
    ) -> None:
        self.app = app
        self.routes = routes
        self.max_request_bytes = max_request_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = -1
        header_bytes = 0
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value) + 4
            if name == b"content-length" and value.isdigit():
                declared = int(value)
        if header_bytes > self.max_header_bytes:
            error: GatewayError = HeadersTooLarge(
                f"request headers total {header_bytes} bytes; the limit is {self.max_header_bytes}"
            )
            await self._reject(scope, send, error)
        elif declared > self.max_request_bytes:
            await self._reject(scope, send, self._too_large())
        else:
            await self.app(scope, self._counting(receive), send)

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

    async def _reject(self, scope: Scope, send: Send, error: GatewayError) -> None:
        """Answer without running the app; the unread body means the connection closes."""
        scope["state"]["error"] = error  # for the access log and metrics
        dialect = self.routes.dialect_for(scope["path"])
        body = dialect.error_body(error, scope["state"].get("request_id"))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})
