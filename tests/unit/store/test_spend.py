"""The spend log's queue and flusher (store/spend.py): `put` never blocks, batches reach the
sink, a failing sink keeps its rows for the next flush, and `stop` writes what is queued."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson

from llm_gateway.store.spend import JsonLinesSink, MemorySink, SpendLog, SpendRow


def row(n: int, cost: Decimal | None = Decimal("0.001")) -> SpendRow:
    return SpendRow(
        at=datetime(2025, 6, 18, tzinfo=UTC),
        request_id=f"r{n}",
        key_id="k",
        team_id=None,
        end_user=None,
        model="m",
        deployment="m/0:p/up",
        provider="p",
        prompt_tokens=3,
        completion_tokens=2,
        cached_tokens=0,
        reasoning_tokens=0,
        cost_usd=cost,
        estimated=False,
        latency_s=0.1,
        ttft_s=None,
        status=200,
        error=None,
        attempts=1,
        fallback=None,
    )


class Flaky:
    def __init__(self) -> None:
        self.fail = True
        self.rows: list[SpendRow] = []

    async def write(self, rows: Sequence[SpendRow]) -> None:
        if self.fail:
            raise OSError("disk full")
        self.rows.extend(rows)


async def test_batches_and_shutdown_flush() -> None:
    sink = MemorySink()
    spend = SpendLog(sink, batch_size=3, flush_interval=60)
    await spend.start()
    for n in range(3):
        spend.put(row(n))
    for _ in range(100):  # a full batch wakes the flusher without waiting for the interval
        if len(sink.rows) == 3:
            break
        await asyncio.sleep(0.01)
    assert len(sink.rows) == 3
    spend.put(row(3))
    await spend.stop()
    assert [r.request_id for r in sink.rows] == ["r0", "r1", "r2", "r3"]


async def test_a_failing_sink_keeps_its_rows() -> None:
    sink = Flaky()
    spend = SpendLog(sink)
    spend.put(row(1))
    assert not await spend.flush()
    assert spend.pending == 1
    sink.fail = False
    assert await spend.flush()
    assert [r.request_id for r in sink.rows] == ["r1"]


async def test_a_full_queue_drops_rather_than_grows() -> None:
    spend = SpendLog(MemorySink(), max_queue=2)
    for n in range(5):
        spend.put(row(n))
    assert (spend.pending, spend.dropped) == (2, 3)


async def test_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "spend.jsonl"
    await JsonLinesSink(path).write([row(1), row(2, cost=None)])
    first, second = (orjson.loads(line) for line in path.read_bytes().splitlines())
    assert first["cost_usd"] == "0.001" and second["cost_usd"] is None
    assert first["at"] == "2025-06-18T00:00:00+00:00"
    assert "messages" not in first and "content" not in first
