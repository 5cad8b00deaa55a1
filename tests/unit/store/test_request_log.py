"""The request log's reads (store/request_log.py) on SQLite and PostgreSQL: attempts stored as
compact JSON and read back whole, each filter, pages newest first, the lookup by id, and
rows written before migration 0006 read with no attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa

from llm_gateway.observability.redaction import Redactor
from llm_gateway.store.db import Database
from llm_gateway.store.request_log import RequestLog, decode_attempts
from llm_gateway.store.spend import MAX_ATTEMPTS, AttemptRecord, encode_attempts
from llm_gateway.store.spend_db import BadCursor, DatabaseSink, body_text
from tests.unit.store.test_spend_db import DAY, spend

FAILED = AttemptRecord("m/0:p/bad", "p", "failed", 0.25, error="UpstreamServerError", status=502, group="m")
ANSWERED = AttemptRecord("m/1:p/up", "p", "answered", 0.5, ttft_s=0.1, group="m")


def test_attempts_are_encoded_compactly_and_decoded_whole() -> None:
    text = encode_attempts([FAILED, ANSWERED])
    assert text is not None
    stored = orjson.loads(text)
    assert stored[0] == {
        "deployment": "m/0:p/bad",
        "provider": "p",
        "outcome": "failed",
        "latency_s": 0.25,
        "error": "UpstreamServerError",
        "status": 502,
        "group": "m",
    }
    assert "hedge" not in stored[1] and "error" not in stored[1] and stored[1]["ttft_s"] == 0.1
    decoded = decode_attempts(text)
    assert decoded[1] == {
        "deployment": "m/1:p/up",
        "provider": "p",
        "outcome": "answered",
        "latency_s": 0.5,
        "ttft_s": 0.1,
        "error": None,
        "status": None,
        "group": "m",
        "hedge": False,
    }
    assert encode_attempts([]) is None and decode_attempts(None) == []
    assert decode_attempts("not json") == [] and decode_attempts('{"a": 1}') == []
    many = encode_attempts([ANSWERED] * (MAX_ATTEMPTS + 5))
    assert many is not None and len(orjson.loads(many)) == MAX_ATTEMPTS


async def test_requests_are_filtered_paged_and_looked_up(database: Database) -> None:
    rows = [
        spend(1, key_id="a", attempt_log=(FAILED, ANSWERED), attempts=2),
        spend(2, key_id="b", team_id="t", at=DAY + timedelta(seconds=1)),
        spend(3, key_id="a", model="other", at=DAY + timedelta(seconds=2)),
        spend(4, key_id="a", status=502, error="AllDeploymentsFailed", at=DAY + timedelta(seconds=3)),
    ]
    await DatabaseSink(database).write(rows)
    log = RequestLog(database)

    async def ids(**kwargs: object) -> list[str]:
        page = await log.page(10, **kwargs)  # type: ignore[arg-type]
        return [item["request_id"] for item in page.items]

    assert await ids() == ["r4", "r3", "r2", "r1"]
    assert await ids(filters={"key_id": "a"}) == ["r4", "r3", "r1"]
    assert await ids(filters={"team_id": "t"}) == ["r2"]
    assert await ids(filters={"model": "other"}) == ["r3"]
    assert await ids(filters={"status": 502}) == ["r4"]
    assert await ids(filters={"key_id": "a", "model": None}, start=DAY + timedelta(seconds=1)) == ["r4", "r3"]
    assert await ids(end=DAY + timedelta(seconds=1)) == ["r1"]
    first = await log.page(2, filters={"key_id": "a"})
    assert [i["request_id"] for i in first.items] == ["r4", "r3"] and first.next_cursor
    second = await log.page(2, first.next_cursor, filters={"key_id": "a"})
    assert [i["request_id"] for i in second.items] == ["r1"] and second.next_cursor is None
    found = await log.get("r1")
    assert found is not None and found["attempts"] == 2
    assert [a["outcome"] for a in found["attempt_log"]] == ["failed", "answered"]
    assert found["attempt_log"][0]["error"] == "UpstreamServerError"
    plain = await log.get("r2")
    assert plain is not None and plain["attempt_log"] == []
    assert await log.get("nobody") is None
    with pytest.raises(BadCursor):
        await log.page(3, "garbage!")


async def test_the_lookup_takes_the_newest_of_a_reused_id(database: Database) -> None:
    await DatabaseSink(database).write(
        [spend(1, request_id="same"), spend(2, request_id="same", at=DAY + timedelta(seconds=5), status=429)]
    )
    found = await RequestLog(database).get("same")
    assert found is not None and found["status"] == 429


async def test_rows_from_before_the_request_log_survive_the_migration(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.migrate("0005_templates_cache")
        await write_v5_row(db)
        await db.migrate()
        found = await RequestLog(db).get("old")
        assert found is not None and found["attempt_log"] == [] and found["key_id"] == "a"
    finally:
        await db.aclose()


async def write_v5_row(db: Database) -> None:
    """A row as revision 0005 wrote it (no `attempt_log` column)."""
    zero = dict.fromkeys(("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens"), 0)
    values = {"at": DAY, "request_id": "old", "key_id": "a", "estimated": False, "latency_s": 0.1}
    values |= {"status": 200, "attempts": 1, "operation": "chat", "stream": False, **zero}
    columns = sa.table("spend_logs", *(sa.column(name) for name in values))
    async with db.engine.begin() as conn:
        await conn.execute(sa.insert(columns), [values])


def test_a_body_is_redacted_before_it_is_cut() -> None:
    redact = Redactor()
    secret = "sk-" + "a" * 40
    text = body_text("x" * 290 + secret, 300, redact)
    assert text == "x" * 290 + "[redacted]"  # redacted whole, then cut: no fragment of it left
    assert body_text("plain", 300, None) == "plain" and body_text(None, 300, redact) is None
    assert body_text({"n": object()}, 300, redact) is None


async def test_bodies_are_stored_redacted_and_cleared_after_their_retention(database: Database) -> None:
    sink = DatabaseSink(
        database, redact=Redactor(["hunter2-secret"]), max_body_bytes=256, body_retention_days=7
    )
    now = datetime.now(UTC)
    await sink.write(
        [
            spend(1, at=now - timedelta(days=8), bodies=({"q": "old hunter2-secret"}, {"a": "x"})),
            spend(2, at=now - timedelta(hours=1), bodies=({"q": "new hunter2-secret"}, "answer")),
        ]
    )
    log = RequestLog(database)
    old, new = await log.get("r1"), await log.get("r2")
    assert old is not None and old["request_body"] == '{"q":"old [redacted]"}'
    assert new is not None and new["response_body"] == "answer"
    assert await sink.prune(None) == 0  # no row retention: rows stay, old bodies go
    old, new = await log.get("r1"), await log.get("r2")
    assert old is not None and old["request_body"] is None and old["response_body"] is None
    assert new is not None and new["request_body"] == '{"q":"new [redacted]"}'


def test_other_sinks_never_see_bodies() -> None:
    row = spend(1, bodies=({"q": "private"}, None))
    assert "bodies" not in row.to_json() and "private" not in repr(row)
