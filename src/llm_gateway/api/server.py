"""How `serve` runs uvicorn: the connection protocol, the file-descriptor limit, and a
second SIGTERM that cuts the drain short.

`serve` and `serve --workers N` get the same options from `uvicorn_options`, so both use
`GatewayProtocol` (api/protocol.py) and have websockets off (there is no websocket route).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import resource
import signal
import socket
import sys
from types import FrameType
from typing import Any

import uvicorn

from llm_gateway.api.protocol import ConnectionGuard, GatewayProtocol
from llm_gateway.core.config import ServerSettings

log = logging.getLogger("llm_gateway.server")

FAREWELL_SECONDS = 1.0
"""After a second SIGTERM: how long cancelled requests get to send their last event."""

SPARE_FDS = 256
"""Descriptors beyond two per client connection (its socket and an upstream one): logs,
the config, Redis, DNS."""


def uvicorn_options(server: ServerSettings) -> dict[str, Any]:
    guard = ConnectionGuard(server.header_timeout, server.body_timeout, server.max_connections)
    return {
        "host": server.host,
        "port": server.port,
        "loop": "uvloop",
        "http": functools.partial(GatewayProtocol, guard=guard),
        "ws": "none",
        "lifespan": "on",
        "access_log": server.access_log,
        "log_level": server.log_level,
        "log_config": None,
        # uvicorn takes whole seconds; None would wait forever, so 0 must stay 0 (no drain).
        "timeout_graceful_shutdown": math.ceil(server.drain_timeout),
        "timeout_keep_alive": server.keep_alive_timeout,  # seconds, to `loop.call_later`
        "server_header": False,
    }


def raise_fd_limit(max_connections: int, workers: int = 1) -> int:
    """Raise the soft `RLIMIT_NOFILE` to the hard limit; warn when what is left is less than
    `max_connections` needs. Returns the soft limit in force."""
    needed = 2 * max_connections + SPARE_FDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        target = needed if hard == resource.RLIM_INFINITY else hard
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError) as exc:
                log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "the open-file limit is %d, but server.max_connections=%d needs about %d per worker: "
            "connections beyond it will be reset without an answer; raise `ulimit -n` (hard limit %s) "
            "or lower server.max_connections",
            soft,
            max_connections,
            needed,
            "unlimited" if hard == resource.RLIM_INFINITY else hard,
        )
    return soft


class GatewayServer(uvicorn.Server):
    """uvicorn's server, where a second SIGTERM (like a second Ctrl-C) stops draining: open
    streams get their shutdown event and the process exits."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGTERM:
            self.force_exit = True
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        tasks = list(self.server_state.tasks)
        if self.force_exit and tasks:
            # uvicorn leaves them running and re-raises the signal, which kills the process
            # mid-stream; cancelled here, each stream sends its shutdown event first.
            log.info("cancelling %d request(s) still running", len(tasks))
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=FAREWELL_SECONDS)


def run(app: Any, server: ServerSettings) -> None:
    """Serve `app` (an ASGI app, or an import string with `server.workers` > 1)."""
    raise_fd_limit(server.max_connections)
    options = uvicorn_options(server)
    if server.workers > 1:
        uvicorn.run(app, workers=server.workers, **options)
        return
    instance = GatewayServer(uvicorn.Config(app, **options))
    instance.run()
    if not instance.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE, as uvicorn.run exits
