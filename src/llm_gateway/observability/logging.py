"""Process-wide logging set-up, done once by the CLI or `main`, never at import.

    every logger ─▶ root: one QueueHandler ─▶ (log-writer thread) QueueListener
                       ─▶ stderr handler: RedactingFilter → JSON or text formatter

Nothing on the event loop waits for a write: a record is put on an unbounded queue and the
writer thread redacts, formats and writes it. The access log (`llm_gateway.access`) is one
record per request whose `access` attribute is an immutable `RequestRecord`; it skips the
queue handler's eager formatting (there is nothing mutable to freeze) and is rendered in
the writer thread, as JSON fields or `key=value` text (see `access_sink`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import datetime
import logging
import operator
import queue
import sys
from collections.abc import Callable, Iterable, Mapping
from logging.handlers import QueueHandler, QueueListener
from typing import Any

import orjson

from llm_gateway.core.observability_config import QUIET_LIBRARIES, LoggingSettings
from llm_gateway.observability.record import RequestRecord
from llm_gateway.observability.redaction import RedactingFilter, Redactor

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_LOGGER = "llm_gateway.access"

TRACE = 5
"""uvicorn's level below DEBUG; named here too, so `trace` works before uvicorn is imported."""

_MARK = "_llm_gateway"
BATCH_SECONDS = 0.05
BATCH_MAX = 1024


def access_fields(record: RequestRecord) -> dict[str, Any]:
    """The access line's fields, in a fixed order (docs/observability.md lists them)."""
    tokens = record.tokens

    def ms(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds * 1000, 3)

    return {
        "request_id": record.request_id,
        "trace_id": record.trace_id,
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "error_type": record.error_type,
        "key_id": record.key_id,
        "key_name": record.key_name,
        "team": record.team,
        "end_user": record.end_user,
        "front_door": record.front_door,
        "model": record.model,
        "deployment": record.deployment,
        "provider": record.provider,
        "stream": record.stream,
        "attempts": record.attempts,
        "fallback": record.fallback,
        "hedged": record.hedged,
        "cache": record.cache,
        "guardrails": dict(record.guardrails) or None,
        "prompt_tokens": tokens.prompt,
        "completion_tokens": tokens.completion,
        "cached_tokens": tokens.cached,
        "cache_write_tokens": tokens.cache_write,
        "reasoning_tokens": tokens.reasoning,
        "usage_estimated": record.usage_estimated,
        "cost_usd": None if record.cost_usd is None else str(record.cost_usd),
        "unpriced": record.unpriced,
        "latency_ms": ms(record.latency),
        "ttft_ms": ms(record.ttft),
        "upstream_ms": ms(record.upstream),
        "overhead_ms": ms(record.overhead),
    }


def access_sink() -> Callable[[RequestRecord], None]:
    """Writes a request's record to the access logger. Once `setup_logging` has run, the
    record goes straight into the writer's next batch (the `logging` call path, caller
    lookup and handler locks included, was a visible share of a request's CPU) and becomes
    a log record in the writer thread, handled by the gateway's own handlers; otherwise (an
    embedding application's logging) it is an ordinary `logger.info`."""
    logger = logging.getLogger(ACCESS_LOGGER)
    info = logging.INFO
    handler = next((h for h in logging.getLogger().handlers if isinstance(h, _Enqueue)), None)
    if handler is None:

        def log(record: RequestRecord) -> None:
            if logger.isEnabledFor(info):
                logger.info("request", extra={"access": record})

        return log
    batch = handler

    def enqueue(record: RequestRecord) -> None:
        if logger.isEnabledFor(info):
            batch.enqueue_access(record)

    return enqueue


class _Clock:
    """ISO 8601 UTC times with milliseconds; the date-and-second part is made once a second."""

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self.second:
            moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
            self.second, self.prefix = second, moment.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self.prefix}.{int((created - second) * 1000):03d}+00:00"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and an access record's fields."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact
        self.iso = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        access = getattr(record, "access", None)
        if isinstance(access, RequestRecord):
            return self.format_access(access, record.process)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line).decode()

    def format_access(self, access: RequestRecord, pid: int | None) -> str:
        """An access record's line, straight from the record (the writer thread's fast path:
        no `LogRecord`, no intermediate dicts); the same keys in the same order as `format`
        gives any other record, then `access_fields`'."""
        tokens = access.tokens
        latency, ttft, upstream, overhead = access.latency, access.ttft, access.upstream, access.overhead
        cost = access.cost_usd
        line = {
            "time": self.iso(access.time),
            "level": "info",
            "logger": ACCESS_LOGGER,
            "pid": pid,
            "message": "request",
            "request_id": access.request_id,
            "trace_id": access.trace_id,
            "method": access.method,
            "path": access.path,
            "status": access.status,
            "error_type": access.error_type,
            "key_id": access.key_id,
            "key_name": access.key_name,
            "team": access.team,
            "end_user": access.end_user,
            "front_door": access.front_door,
            "model": access.model,
            "deployment": access.deployment,
            "provider": access.provider,
            "stream": access.stream,
            "attempts": access.attempts,
            "fallback": access.fallback,
            "hedged": access.hedged,
            "cache": access.cache,
            "guardrails": dict(access.guardrails) if access.guardrails else None,
            "prompt_tokens": tokens.prompt,
            "completion_tokens": tokens.completion,
            "cached_tokens": tokens.cached,
            "cache_write_tokens": tokens.cache_write,
            "reasoning_tokens": tokens.reasoning,
            "usage_estimated": access.usage_estimated,
            "cost_usd": None if cost is None else str(cost),
            "unpriced": access.unpriced,
            "latency_ms": round(latency * 1000, 3),
            "ttft_ms": None if ttft is None else round(ttft * 1000, 3),
            "upstream_ms": None if upstream is None else round(upstream * 1000, 3),
            "overhead_ms": None if overhead is None else round(overhead * 1000, 3),
        }
        text = orjson.dumps(line).decode()
        # Only the record's text fields can carry a credential (the rest are our own keys,
        # numbers and times), and JSON escaping leaves every marker intact: testing them
        # alone is a fifth of testing the line, and the whole line is redacted if they hit.
        return self.redact(text) if self.redact.needed("\n".join(map(str, _text_fields(access)))) else text


_text_fields = operator.itemgetter(
    *(i for i, kind in enumerate(RequestRecord.__annotations__.values()) if "str" in str(kind))
)
"""The fields of a `RequestRecord` that hold text (`str`, `str | None`, the guardrails' pairs)."""


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`; an access record's message is its fields as `k=v`."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        access = getattr(record, "access", None)
        if not isinstance(access, RequestRecord):
            return super().format(record)
        fields = " ".join(
            f"{name}={_text(value)}" for name, value in access_fields(access).items() if value is not None
        )
        record.msg, record.args = fields, None
        return self.redact(super().format(record))


def _text(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return orjson.dumps(text).decode() if (" " in text or '"' in text or not text) else text


class _Enqueue(QueueHandler):
    """A queue handler that freezes ordinary records (their arguments may change later) and
    hands them over one by one. Access records (`enqueue_access`) are immutable and go in
    batches: on the event loop they are collected for `BATCH_SECONDS` and enqueued together,
    so the writer thread wakes (and takes the GIL from the loop) a few times a second, not
    once per request."""

    def __init__(self, records: queue.SimpleQueue[Any]) -> None:
        super().__init__(records)
        self._batch: list[RequestRecord] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if hasattr(record, "access"):
            return record
        prepared: logging.LogRecord = super().prepare(record)
        return prepared

    def enqueue_access(self, record: RequestRecord) -> None:
        """Batch an access record; without a running loop (no batch timer) send it at once."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.queue.put_nowait([record])
            return
        if self._batch and self._loop is not loop:
            self.flush_batch()
        if not self._batch:
            self._loop = loop
            loop.call_later(BATCH_SECONDS, self.flush_batch)
        self._batch.append(record)
        if len(self._batch) >= BATCH_MAX:
            self.flush_batch()

    def flush_batch(self) -> None:
        batch, self._batch = self._batch, []
        if batch:
            self.queue.put_nowait(batch)


class _Writer(QueueListener):
    """The writer thread: ordinary records one by one; a batch of access records made into
    records of the access logger here, off the event loop, and written to each stream in
    one write (a flush per line was a system call per request)."""

    def handle(self, record: Any) -> None:
        if not isinstance(record, list):
            super().handle(record)
            return
        # One record made the usual way: its process id for the JSON fast path, and copied
        # per line for any other handler (`LogRecord()`'s thread, process and path look-ups
        # cost more than formatting the line).
        template = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, "request", None, None)
        template.redacted = True  # the formatter redacts the whole line
        lines: list[logging.LogRecord] | None = None
        for handler in self.handlers:
            if isinstance(handler, logging.StreamHandler):
                formatter = _json_formatter(handler)
                if formatter is not None:
                    text = "".join(
                        formatter.format_access(access, template.process) + "\n" for access in record
                    )
                    _write(handler, text, template)
                    continue
            lines = lines if lines is not None else _records(template, record)
            if isinstance(handler, logging.StreamHandler):
                _write_all(handler, lines)
            else:
                for line in lines:
                    handler.handle(line)


def _records(template: logging.LogRecord, batch: list[RequestRecord]) -> list[logging.LogRecord]:
    fields = template.__dict__
    lines = []
    for access in batch:
        line = object.__new__(logging.LogRecord)
        line.__dict__.update(fields)
        line.created = access.time
        line.msecs = (access.time % 1) * 1000
        line.access = access
        lines.append(line)
    return lines


def _json_formatter(handler: logging.StreamHandler[Any]) -> JsonFormatter | None:
    """The formatter of a handler of JSON lines whose filters only redact (which the
    formatter does for an access line): its access lines need no `LogRecord`."""
    formatter = handler.formatter
    if type(formatter) is JsonFormatter and all(isinstance(f, RedactingFilter) for f in handler.filters):
        return formatter
    return None


def _write_all(handler: logging.StreamHandler[Any], lines: list[logging.LogRecord]) -> None:
    _write(handler, "".join(handler.format(line) + "\n" for line in lines if handler.filter(line)), lines[0])


def _write(handler: logging.StreamHandler[Any], text: str, first: logging.LogRecord) -> None:
    if not text:
        return
    with handler.lock or contextlib.nullcontext():
        try:
            handler.stream.write(text)
            handler.flush()
        except Exception:
            if first is not None:
                handler.handleError(first)
            else:
                handler.handleError(
                    logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, "request", None, None)
                )


def _choose_format(setting: str) -> str:
    if setting != "auto":
        return setting
    return "text" if sys.stderr.isatty() else "json"


def setup_logging(
    level: str = "info", settings: LoggingSettings | None = None, secrets: Iterable[str] = ()
) -> None:
    """Log to stderr at `level` (the caller decides between a flag, `logging.level` and
    `server.log_level`), through the writer thread, with every handler redacting `secrets`
    and credential-shaped text. Idempotent."""
    settings = settings or LoggingSettings()
    logging.addLevelName(TRACE, "TRACE")
    root = logging.getLogger()
    global _redactor
    redact = _redactor = Redactor(secrets)
    sink = logging.StreamHandler(sys.stderr)
    fmt = _choose_format(settings.format)
    sink.setFormatter(JsonFormatter(redact) if fmt == "json" else TextFormatter(redact))
    sink.addFilter(RedactingFilter(redact))
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        listener = getattr(handler, "listener", None)
        if listener is not None and isinstance(handler, _Enqueue):
            _stop(listener, handler)
    records: queue.SimpleQueue[Any] = queue.SimpleQueue()
    enqueue = _Enqueue(records)
    setattr(enqueue, _MARK, True)
    listener = _Writer(records, sink, respect_handler_level=False)
    setattr(enqueue, "listener", listener)  # noqa: B010 (3.11's QueueHandler has no such field)
    root.addHandler(enqueue)
    listener.start()
    atexit.register(_stop, listener, enqueue)
    root.setLevel(level.upper())
    _set_levels({**QUIET_LIBRARIES, **settings.levels})
    _guard_other_handlers(RedactingFilter(redact))


_redactor: Redactor | None = None
"""The redactor `setup_logging` installed, which `remember_secrets` teaches."""


def remember_secrets(secrets: Iterable[str]) -> None:
    """Mask these credentials in every log line from now on (a reloaded config's)."""
    if _redactor is not None:
        _redactor.add(secrets)


def _stop(listener: QueueListener, handler: _Enqueue) -> None:
    """Write what is queued and end the writer thread (once: 3.11's `stop` fails a second time)."""
    handler.flush_batch()
    if getattr(listener, "_thread", None) is not None:
        listener.stop()


def _set_levels(levels: Mapping[str, str]) -> None:
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value.upper())


def _guard_other_handlers(redacting: RedactingFilter) -> None:
    """Handlers libraries (or an embedding application) attached before us redact too."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if not getattr(handler, _MARK, False) and not any(
                isinstance(f, RedactingFilter) for f in handler.filters
            ):
                handler.addFilter(redacting)
