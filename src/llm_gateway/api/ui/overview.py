"""`/ui/`: the overview: traffic, errors, latency and time to first token, tokens and spend
today, charted over the last hour (per minute), day (per hour) or week (per day).

The hour and day charts are one grouped query over the log's time index; the week chart
and today's totals come from the daily rollup; percentiles from the newest requests only
(`store/traffic.py`). A virtual key sees its own traffic only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.ui.charts import bars
from llm_gateway.api.ui.guard import SignedIn, runtime_of
from llm_gateway.api.ui.pages import money, render
from llm_gateway.services.identities import Identities
from llm_gateway.store.spend_db import SpendStore
from llm_gateway.store.traffic import Bucket, Traffic

router = APIRouter(include_in_schema=False)

Range = Literal["hour", "day", "week"]


@dataclass(frozen=True, slots=True)
class Window:
    slots: int
    step: timedelta
    label: str

    def slot_label(self, start: datetime) -> str:
        return start.strftime("%a %d" if self.step >= timedelta(days=1) else "%H:%M")


WINDOWS: dict[str, Window] = {
    "hour": Window(60, timedelta(minutes=1), "last hour, per minute"),
    "day": Window(24, timedelta(hours=1), "last 24 hours, per hour"),
    "week": Window(7, timedelta(days=1), "last 7 days, per day (UTC)"),
}


def _floor(moment: datetime, step: timedelta) -> datetime:
    seconds = int(step.total_seconds())
    return datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, UTC)


async def _buckets(identities: Identities, window: Window, now: datetime, key_id: str | None) -> list[Bucket]:
    """Every slot of the window, oldest first (slots with no traffic are zero)."""
    first = _floor(now, window.step) - window.step * (window.slots - 1)
    if window.step >= timedelta(days=1):
        days = await SpendStore(identities.database).usage("day", first.date(), now.date(), key_id=key_id)
        found = {
            datetime.fromisoformat(str(day.group)).replace(tzinfo=UTC): Bucket(
                datetime.fromisoformat(str(day.group)).replace(tzinfo=UTC),
                day.requests,
                day.errors,
                day.prompt_tokens + day.completion_tokens,
                day.cost_usd,
            )
            for day in days
            if day.group
        }
    else:
        rows = await Traffic(identities.database).buckets(first, int(window.step.total_seconds()), key_id)
        found = {bucket.start: bucket for bucket in rows}
    slots = [first + window.step * index for index in range(window.slots)]
    return [found.get(start, Bucket(start, 0, 0, 0, None)) for start in slots]


@router.get("/ui/")
async def overview(request: Request, viewer: SignedIn, range: Range = "hour") -> Response:
    runtime = runtime_of(request)
    identities = runtime.identities
    assert identities is not None
    window, now = WINDOWS[range], datetime.now(UTC)
    key_id = None if viewer.admin or viewer.read_only else viewer.key_id
    buckets = await _buckets(identities, window, now, key_id)
    since = buckets[0].start
    stats = await Traffic(identities.database).percentiles(since, key_id)
    today = await SpendStore(identities.database).usage("day", now.date(), now.date(), key_id=key_id)
    requests = sum(bucket.requests for bucket in buckets)
    errors = sum(bucket.errors for bucket in buckets)
    last_minutes = await Traffic(identities.database).buckets(now - timedelta(minutes=5), 60, key_id)
    labels = [window.slot_label(bucket.start) for bucket in buckets]
    charts = {
        "Requests": bars(list(zip(labels, (float(b.requests) for b in buckets), strict=True)), "Requests"),
        "Errors": bars(
            list(zip(labels, (float(b.errors) for b in buckets), strict=True)), "Errors", tone="bad"
        ),
        "Tokens": bars(list(zip(labels, (float(b.tokens) for b in buckets), strict=True)), "Tokens"),
        "Spend": bars(
            list(zip(labels, (float(b.cost_usd or 0) for b in buckets), strict=True)),
            "Spend (USD)",
            fmt=lambda value: money(Decimal(str(round(value, 6)))),
            tone="money",
        ),
    }
    return render(
        request,
        viewer,
        "overview.html",
        range=range,
        window=window,
        charts=charts,
        requests=requests,
        error_rate=(errors / requests) if requests else None,
        per_minute=sum(bucket.requests for bucket in last_minutes) / 5,
        stats=stats,
        today=today[0] if today else None,
    )
