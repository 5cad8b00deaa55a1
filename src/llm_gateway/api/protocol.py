"""The HTTP/1.1 connection itself: deadlines for a request's head and body, and a limit on
open connections, enforced below the ASGI app where idle sockets cost nothing else.

uvicorn's httptools protocol waits forever for a request head or body that trickles in
(slowloris) or never comes: each such socket holds a file descriptor until the process
runs out and legitimate connections are reset. `GatewayProtocol` adds:

    connection made / next request begins ── header_timeout ──▶ headers complete
    headers complete ── body_timeout ──▶ message complete   (then the app has all the time it needs)
    a deadline passes: 408 if nothing was sent yet, then the connection closes
    headers complete with more than max_connections open: a JSON 503, then close
    an Upgrade request (websockets are off): served as plain HTTP and closed after, or a 400
    at once if it carries a body (the parser stops at the upgrade and would never read it)

Writes within one event-loop turn go out in one system call (`api/coalesce.py`).
uvicorn's keep-alive timeout (`server.keep_alive_timeout`) closes idle connections between requests. It is
passed to uvicorn as `http=functools.partial(GatewayProtocol, guard=ConnectionGuard(...))`
(`cli.serve`), which pickles, so `serve --workers N` runs it in every worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from llm_gateway.api.coalesce import CoalescingTransport

log = logging.getLogger("llm_gateway.connections")

REPORT_EVERY = 10.0
"""Seconds between log lines about closed or refused connections (a flood logs a count)."""


def _error(message: str, code: str, kind: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


@dataclass(slots=True)
class ConnectionGuard:
    """The limits every connection of one process shares, and a throttled report of what
    they refused (one warning per `REPORT_EVERY` seconds, with counts)."""

    header_timeout: float
    body_timeout: float
    max_connections: int
    _counts: dict[str, int] = field(default_factory=dict)
    _reported_at: float = 0.0

    def note(self, what: str) -> None:
        self._counts[what] = self._counts.get(what, 0) + 1
        now = time.monotonic()
        if now - self._reported_at >= REPORT_EVERY:
            summary = ", ".join(f"{count} {name}" for name, count in sorted(self._counts.items()))
            log.warning("connections closed or refused since the last report: %s", summary)
            self._counts.clear()
            self._reported_at = now

    def __getstate__(self) -> dict[str, Any]:
        return {"header_timeout": self.header_timeout, "body_timeout": self.body_timeout,
                "max_connections": self.max_connections}  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.header_timeout = state["header_timeout"]
        self.body_timeout = state["body_timeout"]
        self.max_connections = state["max_connections"]
        self._counts = {}
        self._reported_at = 0.0


def _response(status: bytes, body: bytes, *extra: bytes) -> bytes:
    head = [
        b"HTTP/1.1 " + status,
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
        *extra,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


TIMEOUT_RESPONSE = _response(
    b"408 Request Timeout",
    _error("the request was not received in time; the connection is closed", "request_timeout",
           "invalid_request_error"),
)  # fmt: skip
BUSY_BODY = _error(
    "the gateway is at its connection limit; retry shortly", "connection_limit", "service_unavailable"
)


async def _busy(scope: Scope, receive: Receive, send: Send) -> None:
    """The app a connection over the limit gets: a 503 that closes the connection."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BUSY_BODY)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": BUSY_BODY})


UPGRADE_BODY = _error(
    "protocol upgrades (websocket, h2c) are not served, and a request asking for one cannot "
    "carry a body here; send it without the Upgrade header",
    "upgrade_not_supported",
    "invalid_request_error",
)


async def _upgrade_refused(scope: Scope, receive: Receive, send: Send) -> None:
    """An `Upgrade` request with a body: the parser stops at the upgrade, so the body would
    never arrive. Answered at once, and the connection closes."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(UPGRADE_BODY)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": UPGRADE_BODY})


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class GatewayProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head and body deadlines and a connection limit."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        guard: ConnectionGuard,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = guard
        self._served_app = self.app
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for = "head"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, self.loop)  # api/coalesce.py says why
        super().connection_made(coalescing)  # type: ignore[arg-type]
        self._arm("head", self.guard.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the next request on a kept-alive connection
            self._arm("head", self.guard.header_timeout)

    def on_headers_complete(self) -> None:
        self._disarm()
        upgrade = self.parser.should_upgrade()
        if len(self.connections) > self.guard.max_connections:
            self.app = _busy
            self.guard.note("over the connection limit")
        elif upgrade and _has_body(self.headers):
            self.app = _upgrade_refused
            self.guard.note("upgrade requests with a body")
        else:
            self.app = self._served_app
        super().on_headers_complete()
        if upgrade:
            self.cycle.keep_alive = False  # the parser reads nothing after an upgrade request
        self._arm("body", self.guard.body_timeout)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]  # the answer's end goes out now
        super().on_response_complete()

    def _unsupported_upgrade_warning(self) -> None:
        """uvicorn logs two lines per upgrade request (one advising to install a websocket
        library): a cheap log flood. Websockets are off on purpose; counted instead."""
        self.guard.note("upgrade requests")

    def _arm(self, waiting_for: str, seconds: float) -> None:
        self._disarm()
        self._waiting_for = waiting_for
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        """A deadline passed: answer 408 unless a response has begun, and close."""
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._waiting_for == "head":
            unanswered = cycle is None or cycle.response_complete
        else:
            unanswered = not cycle.response_started
        if unanswered:
            self.transport.write(TIMEOUT_RESPONSE)
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's later sends are dropped, its receive ends
            cycle.message_event.set()
        self.guard.note(f"{self._waiting_for} timeouts")
        self.transport.close()
