"""The access line in both formats, written by the writer thread with every field and no
secret; per-logger levels; library noise quiet by default."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import orjson
import pytest

from llm_gateway.core.observability_config import LoggingSettings
from llm_gateway.observability.logging import JsonFormatter, TextFormatter, access_fields, setup_logging
from llm_gateway.observability.record import RequestRecord
from llm_gateway.observability.redaction import Redactor

RECORD = RequestRecord(
    time=1_700_000_000.0,
    request_id="req-1",
    method="POST",
    path="/v1/chat/completions",
    status=200,
    latency=0.0123,
    end_user="sk-gw-LeakedIntoTheUserField0123456789",
    model="gpt-4o",
    upstream=0.01,
    overhead=0.0023,
)


def access_log_record() -> logging.LogRecord:
    record = logging.LogRecord("llm_gateway.access", logging.INFO, __file__, 1, "request", None, None)
    record.access = RECORD
    return record


def test_the_json_line_has_every_field_and_no_secret() -> None:
    line = orjson.loads(JsonFormatter(Redactor()).format(access_log_record()))
    assert set(access_fields(RECORD)) <= set(line)
    assert line["time"].startswith("2023-11-14T22:13:20")
    assert (line["latency_ms"], line["upstream_ms"], line["overhead_ms"]) == (12.3, 10.0, 2.3)
    assert line["end_user"] == "[redacted]"


def test_the_text_line_is_key_value_pairs() -> None:
    text = TextFormatter(Redactor()).format(access_log_record())
    assert "llm_gateway.access: request_id=req-1 " in text and "status=200" in text
    assert "model=gpt-4o" in text and "LeakedIntoTheUserField" not in text
    assert "trace_id=" not in text  # None fields are left out


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            listener = getattr(handler, "listener", None)
            if listener is not None and listener._thread is not None:
                listener.stop()
    root.setLevel(level)
    for name in ("aiohttp", "asyncio", "llm_gateway.access"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_setup_writes_through_the_writer_thread(
    restore_logging: None, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = LoggingSettings(format="json", levels={"llm_gateway.access": "warning"})
    setup_logging("debug", settings, ["a-config-secret-77"])
    assert logging.getLogger("aiohttp").level == logging.WARNING
    assert logging.getLogger("asyncio").level == logging.WARNING
    assert logging.getLogger("llm_gateway.access").level == logging.WARNING
    assert logging.getLogger().level == logging.DEBUG
    logging.getLogger("llm_gateway.test").info("the key is %s", "a-config-secret-77")
    deadline = time.monotonic() + 5
    while "the key is" not in (err := capfd.readouterr().err) and time.monotonic() < deadline:
        time.sleep(0.02)
    line = orjson.loads(next(x for x in err.splitlines() if "the key is" in x))
    assert line["message"] == "the key is [redacted]" and line["logger"] == "llm_gateway.test"
