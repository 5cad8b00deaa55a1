"""Graceful shutdown, made visible: what the gateway says while it drains.

On the first SIGTERM (or Ctrl-C) uvicorn stops accepting connections and waits, up to
`server.drain_timeout`, for the requests in flight to finish; only then does the app's
lifespan end. `Drain.begin` runs when that signal arrives (app.py chains it before
uvicorn's own handler) and `Drain.end` when the lifespan ends, so the drain has a start,
a running count and an end an operator can see (`forget` then tidies up after it):

- a log line at the start (`draining: N request(s) in flight, ...`) and at the end
  (`drained in S s`), on every worker that drains;
- `llm_gateway_draining` (1 while this process drains) and
  `llm_gateway_draining_requests` (its requests still running), kept current every
  `poll` seconds while draining, and nothing on the request path otherwise.

The gauges can be scraped only where some other process still answers `/metrics`: a
draining process has closed its listening socket. Under `serve --workers N` that is a
sibling worker (prometheus-client's multiprocess files are shared), while one worker is
stopped on its own. At its end a worker removes its live gauges from the shared folder
(`mark_process_dead`), so a worker that is gone counts as neither draining nor in flight.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

from llm_gateway.observability.metrics import Metrics

log = logging.getLogger("llm_gateway.shutdown")


class Drain:
    """One process's drain. `running` counts the requests still being served."""

    def __init__(
        self,
        running: Callable[[], int],
        metrics: Metrics | None,
        timeout: float,
        poll: float = 0.1,
    ) -> None:
        self._running = running
        self._metrics = metrics
        self._timeout = timeout
        self._poll = poll
        self.started_at: float | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._ended = False

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def begin(self) -> None:
        """The shutdown signal arrived (on the event loop; a second signal changes nothing)."""
        if self.started_at is not None or self._ended:
            return
        self.started_at = time.monotonic()
        running = self._running()
        log.info(
            "draining: %d request(s) in flight, waiting up to %g s for them (server.drain_timeout)",
            running,
            self._timeout,
        )
        if self._metrics is not None:
            self._metrics.draining.set(1)
            self._metrics.draining_requests.set(running)
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Keep `draining_requests` current until the lifespan ends."""
        assert self._metrics is not None
        gauge = self._metrics.draining_requests
        while True:
            await asyncio.sleep(self._poll)
            gauge.set(self._running())

    def end(self) -> None:
        """The lifespan ends: the drain is over (finished, or cut by the drain timeout)."""
        self._ended = True
        if self._watcher is not None:
            self._watcher.cancel()
        if self.started_at is not None:
            log.info(
                "drained in %.1f s; %d request(s) still running",
                time.monotonic() - self.started_at,
                self._running(),
            )
        if self._metrics is not None:
            self._metrics.draining_requests.set(0)
            self._metrics.draining.set(0)

    def forget(self) -> None:
        """Last, once nothing will touch a metric again: under several workers, remove this
        process's live gauges (in flight, draining, ...) from the shared folder, so a worker
        that is gone is not counted. Its counters stay: they are totals."""
        if self._metrics is not None and self._metrics.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
