"""The spend log: one row per governed request, written off the hot path.

`SpendLog.put` (called from a hook's synchronous `on_end`) appends a row to an in-memory
queue and returns; one flusher task writes batches through a `SpendSink`. A sink failure is
logged and the batch retried on the next flush; rows beyond `max_queue` are dropped (and
counted) rather than let a dead sink grow memory without end. `stop` flushes what is
queued, so a graceful shutdown loses nothing.

`attempt_log` lists the request's upstream attempts (deployment, outcome, timings, error
type). A row never holds a prompt, a completion or a secret: who, what model, where it went, the
token counts, the cost (None when unpriced, never 0 for unknown), timings and the outcome.
The database sink (`store/spend_db.py`) implements `SpendSink` too, and `prune`: with a
`retention_days`, the flusher deletes older rows through it at most once per `prune_every`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import orjson

log = logging.getLogger("llm_gateway.spend")


@dataclass(slots=True)  # not frozen: one or more a request, at half a frozen __init__'s cost
class AttemptRecord:
    """One upstream attempt of a request, as the request log keeps it (`store/request_log.py`)."""

    deployment: str
    provider: str
    outcome: str
    """`answered`, `failed` or `abandoned` (`routing.observers.Outcome`)."""
    latency_s: float
    ttft_s: float | None = None
    error: str | None = None
    """The failure's type name (`UpstreamServerError`, ...); never its message."""
    status: int | None = None
    """The status the gateway maps the failure to (502 for an upstream 5xx, the upstream's
    own for a 4xx)."""
    group: str | None = None
    """The public model the attempt served: differs from the row's `model` on a fallback."""
    hedge: bool = False


MAX_ATTEMPTS = 32
"""Attempts kept per row (the executor's retries and fallbacks stay far below it)."""
_OPTIONAL = ("ttft_s", "error", "status", "group")


def encode_attempts(attempts: Sequence[AttemptRecord]) -> str | None:
    """`attempts` as JSON text for `spend_logs.attempt_log`; None when there were none."""
    if not attempts:
        return None
    items = []
    for attempt in attempts[:MAX_ATTEMPTS]:
        item: dict[str, Any] = {
            "deployment": attempt.deployment,
            "provider": attempt.provider,
            "outcome": attempt.outcome,
            "latency_s": round(attempt.latency_s, 6),
        }
        for name in _OPTIONAL:
            value = getattr(attempt, name)
            if value is not None:
                item[name] = value
        if attempt.hedge:
            item["hedge"] = True
        items.append(item)
    return orjson.dumps(items).decode()


@dataclass(slots=True)
class SpendRow:
    """One request's row. Not frozen, though nothing changes it once made: one is built per
    governed request, and a frozen dataclass's `__init__` of these 30 fields takes about 5 µs
    against under 1 µs (measured)."""

    at: datetime
    """When the request started (UTC)."""
    request_id: str
    key_id: str | None
    team_id: str | None
    end_user: str | None
    model: str | None
    """The public model name the request asked for."""
    deployment: str | None
    provider: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal | None
    estimated: bool
    """True when the upstream reported no usage: tokens are the gateway's estimate."""
    latency_s: float
    ttft_s: float | None
    status: int
    error: str | None
    attempts: int
    fallback: str | None
    operation: str = "chat"
    stream: bool = False
    cache: str | None = None
    """`hit`, `miss` or `bypass` on a cache-enabled model; None otherwise."""
    cache_saved_usd: Decimal | None = None
    """On a hit: what the answer cost when it was first served (the hit itself costs 0)."""
    template_id: str | None = None
    template_version: str | None = None
    attempt_log: tuple[AttemptRecord, ...] = ()
    """Each upstream attempt in order, with its outcome (the request log's `attempts`)."""
    bodies: tuple[Any, Any] | None = field(default=None, repr=False)
    """(request body, response) as the pipeline held them, for a key or team with
    `log_bodies`; serialised, redacted and cut by the database sink, off the request's path.
    Never written by another sink."""
    row_id: str = field(default_factory=lambda: os.urandom(16).hex())
    """Made with the row (128 random bits as hex; the governance hook's come from its
    `store/ids.IdSource`), unique in the log: a batch written again
    after a commit whose acknowledgement was lost (the sink raised, the rows stayed queued)
    adds nothing twice."""

    def to_json(self) -> dict[str, Any]:
        row = asdict(replace(self, bodies=None))
        del row["bodies"]  # only the database sink stores bodies, redacted
        row["at"] = self.at.isoformat()
        row["cost_usd"] = None if self.cost_usd is None else str(self.cost_usd)
        row["cache_saved_usd"] = None if self.cache_saved_usd is None else str(self.cache_saved_usd)
        return row


class SpendSink(Protocol):
    async def write(self, rows: Sequence[SpendRow]) -> None:
        """Store `rows` (raise to have them retried on the next flush). A retried batch may
        have been stored already: a sink that can skips rows whose `row_id` it holds."""


class PrunableSink(SpendSink, Protocol):
    async def prune(self, before: datetime | None) -> int:
        """Delete rows from before `before` (None: none); how many went."""


class MemorySink:
    """The last `keep` rows, in memory (tests; a gateway with nowhere else to write)."""

    def __init__(self, keep: int = 10_000) -> None:
        self.rows: deque[SpendRow] = deque(maxlen=keep)

    async def write(self, rows: Sequence[SpendRow]) -> None:
        self.rows.extend(rows)


class JsonLinesSink:
    """Appends one JSON object per row to a file, in a worker thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def write(self, rows: Sequence[SpendRow]) -> None:
        data = b"".join(orjson.dumps(row.to_json()) + b"\n" for row in rows)
        await asyncio.to_thread(self._append, data)

    def _append(self, data: bytes) -> None:
        with self.path.open("ab") as file:
            file.write(data)


class SpendLog:
    def __init__(
        self,
        sink: SpendSink,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 100_000,
        retention_days: int | None = None,
        prune_every: float = 3600.0,
    ) -> None:
        self.sink = sink
        self.retention_days = retention_days
        self._prune_every = prune_every
        self._pruned_at: float | None = None
        self._batch_size = batch_size
        self._interval = flush_interval
        self._max_queue = max_queue
        self._queue: deque[SpendRow] = deque()
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._stopping = False
        self.dropped = 0
        self.flush_failures = 0

    def put(self, row: SpendRow) -> None:
        """Queue `row`; never blocks, never raises."""
        if len(self._queue) >= self._max_queue:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error("spend log queue full: %d row(s) dropped so far", self.dropped)
            return
        self._queue.append(row)
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        self._flusher = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            await self.flush()
            await self.prune_if_due()
        await self.flush()

    async def prune_if_due(self) -> int:
        """Delete rows past the retention if the sink can and the last prune is old enough."""
        prune = getattr(self.sink, "prune", None)
        keeps_bodies = getattr(self.sink, "body_retention_days", None) is not None
        if (self.retention_days is None and not keeps_bodies) or prune is None:
            return 0
        now = asyncio.get_running_loop().time()
        if self._pruned_at is not None and now - self._pruned_at < self._prune_every:
            return 0
        self._pruned_at = now
        days = self.retention_days
        try:
            deleted = int(await prune(None if days is None else datetime.now(UTC) - timedelta(days=days)))
        except Exception:
            log.exception("could not prune spend rows (retention: %s day(s))", self.retention_days)
            return 0
        if deleted:
            log.info("deleted %d spend row(s) older than %s day(s)", deleted, self.retention_days)
        return deleted

    async def flush(self) -> bool:
        """Write every queued row; False if the sink failed (the rows stay queued)."""
        while self._queue:
            batch = [self._queue[i] for i in range(min(self._batch_size, len(self._queue)))]
            try:
                await self.sink.write(batch)
            except Exception:
                self.flush_failures += 1
                log.exception("could not write %d spend row(s); retrying on the next flush", len(batch))
                return False
            for _ in batch:
                self._queue.popleft()
        return True

    async def stop(self, timeout: float = 10.0) -> None:
        """Let the flusher write what is queued and end (a write in progress is not cut)."""
        self._stopping = True
        self._wake.set()
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            try:
                await asyncio.wait_for(asyncio.shield(flusher), timeout=timeout)
            except TimeoutError:
                flusher.cancel()
        else:
            await self.flush()
        if self._queue:
            log.error("shutting down with %d spend row(s) unwritten", len(self._queue))
