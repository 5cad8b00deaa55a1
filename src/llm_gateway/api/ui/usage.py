"""`/ui/usage` and `/ui/usage.csv`: spend and tokens per key, team, model, end user or UTC day
over a range of days, as charts, a table and a CSV download.

Everything is read from the daily rollup (`SpendStore.usage`), never the log, so a year
costs one row per day and group. Key and team names are looked up for the ids shown, in
one query per kind (`store/names.py`). A virtual key sees its own usage only: its id is
forced into the query whatever the URL says. Bad filters re-render the page with the
reason (a 400), never a 500.

The CSV has the exact decimal cost (empty when unpriced) and is safe to open in a
spreadsheet: a cell that starts like a formula gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.admin.schemas import ID_PATTERN
from llm_gateway.api.ui.charts import bars
from llm_gateway.api.ui.guard import Refused, SignedIn, runtime_of
from llm_gateway.api.ui.pages import SECURITY_HEADERS, money, render
from llm_gateway.api.ui.session import Viewer
from llm_gateway.store.db import Database
from llm_gateway.store.names import names_of
from llm_gateway.store.spend_db import GroupBy, SpendStore, Usage

router = APIRouter(include_in_schema=False)

GROUPS: dict[GroupBy, str] = {
    "day": "Day",
    "key": "Key",
    "team": "Team",
    "model": "Model",
    "user": "End user",
}
DEFAULT_DAYS = 30
CHART_GROUPS = 40
"""The most bars a chart draws (the biggest spenders; the table has every group)."""
CHART_DAYS = 400
"""Up to this many days, a by-day chart shows every day of the range, quiet days as zero."""
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "group",
    "name",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "unpriced_requests",
    "errors",
)


class BadFilter(ValueError):
    """A filter the report cannot use; the message names it, for the page."""


@dataclass(frozen=True, slots=True)
class Query:
    group_by: GroupBy
    start: date
    end: date
    key_id: str | None
    team_id: str | None

    def params(self) -> dict[str, str]:
        """The query string that asks for this report again (the CSV link)."""
        params = {"group_by": self.group_by, "from": self.start.isoformat(), "to": self.end.isoformat()}
        if self.key_id:
            params["key_id"] = self.key_id
        if self.team_id:
            params["team_id"] = self.team_id
        return params


@dataclass(frozen=True, slots=True)
class Row:
    usage: Usage
    label: str
    """What the row is called on the page: the name with the id, the day, the model, …"""
    name: str | None


def _day(text: str, field: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadFilter(f"`{field}` must be a day written YYYY-MM-DD") from None
    if not 1970 <= day.year <= 9999:
        raise BadFilter(f"`{field}` must be a day between the years 1970 and 9999")
    return day


def _id(text: str, field: str) -> str | None:
    if not text:
        return None
    if not re.fullmatch(ID_PATTERN, text):
        raise BadFilter(f"`{field}` is not an id")
    return text


def parse(request: Request, viewer: Viewer, today: date) -> Query:
    """The report the URL asks for, checked; `BadFilter` says what is wrong. A virtual key's
    viewer gets its own key's usage whatever the URL says."""
    values = request.query_params
    group_by = values.get("group_by") or "day"
    if group_by not in GROUPS:
        raise BadFilter(f"`group_by` must be one of {', '.join(GROUPS)}")
    end = _day(values["to"], "to") if values.get("to") else today
    start = _day(values["from"], "from") if values.get("from") else end - timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise BadFilter("`to` is before `from`")
    key_id, team_id = _id(values.get("key_id", ""), "key_id"), _id(values.get("team_id", ""), "team_id")
    if not viewer.admin and not viewer.read_only:
        key_id, team_id = viewer.key_id, None
    return Query(group_by, start, end, key_id, team_id)


async def report(database: Database, query: Query) -> list[Row]:
    """The rows of the report, biggest spenders first (days in order), named."""
    found = await SpendStore(database).usage(
        query.group_by, query.start, query.end, query.key_id, query.team_id
    )
    if query.group_by != "day":
        found.sort(key=lambda usage: (-(usage.cost_usd or Decimal(0)), -usage.requests, usage.group or ""))
    names: dict[str, str] = {}
    if query.group_by in ("key", "team"):
        names = await names_of(database, query.group_by, (usage.group for usage in found if usage.group))
    rows = []
    for usage in found:
        name = names.get(usage.group) if usage.group else None
        if usage.group is None:
            label = "(none)"
        elif name is not None:
            label = f"{name} ({usage.group})"
        else:
            label = usage.group
        rows.append(Row(usage, label, name))
    return rows


def _charts(rows: list[Row], query: Query) -> dict[str, object]:
    points: list[tuple[str, Decimal, int]]
    if query.group_by == "day" and (query.end - query.start).days < CHART_DAYS:
        by_day = {row.usage.group: row.usage for row in rows}
        points = []
        for offset in range((query.end - query.start).days + 1):
            day = (query.start + timedelta(days=offset)).isoformat()
            usage = by_day.get(day)
            points.append(
                (day, usage.cost_usd or Decimal(0), usage.prompt_tokens + usage.completion_tokens)
                if usage
                else (day, Decimal(0), 0)
            )
    else:
        chosen = rows if query.group_by == "day" else rows[:CHART_GROUPS]
        points = [
            (row.name or row.usage.group or "(none)", row.usage.cost_usd or Decimal(0), _tokens(row.usage))
            for row in chosen
        ]
    return {
        "Spend (USD)": bars(
            [(label, float(cost)) for label, cost, _ in points],
            f"Spend per {GROUPS[query.group_by].lower()}",
            fmt=lambda value: money(Decimal(str(round(value, 6)))),
            tone="money",
        ),
        "Tokens (prompt + completion)": bars(
            [(label, float(tokens)) for label, _, tokens in points],
            f"Tokens per {GROUPS[query.group_by].lower()}",
        ),
    }


def _tokens(usage: Usage) -> int:
    return usage.prompt_tokens + usage.completion_tokens


def _totals(rows: list[Row]) -> dict[str, object]:
    priced = [row.usage.cost_usd for row in rows if row.usage.cost_usd is not None]
    fields = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
    totals: dict[str, object] = {name: sum(getattr(row.usage, name) for row in rows) for name in fields}
    totals["unpriced_requests"] = sum(row.usage.unpriced_requests for row in rows)
    totals["errors"] = sum(row.usage.errors for row in rows)
    totals["cost_usd"] = sum(priced, Decimal(0)) if priced else None
    return totals


def _form(request: Request) -> dict[str, str]:
    """What the filter form shows: the submitted values (as typed, escaped by the template)."""
    values = request.query_params
    return {name: values.get(name, "")[:100] for name in ("group_by", "from", "to", "key_id", "team_id")}


@router.get("/ui/usage")
async def usage_page(request: Request, viewer: SignedIn) -> Response:
    runtime = runtime_of(request)
    identities = runtime.identities
    assert identities is not None
    today = datetime.now(UTC).date()
    try:
        query = parse(request, viewer, today)
    except BadFilter as bad:
        form = _form(request)
        return render(
            request, viewer, "usage.html", 400, error=str(bad), form=form, groups=GROUPS, query=None
        )
    rows = await report(identities.database, query)
    params = query.params()
    form = {**params, "key_id": params.get("key_id", ""), "team_id": params.get("team_id", "")}
    return render(
        request,
        viewer,
        "usage.html",
        error=None,
        form=form,
        groups=GROUPS,
        query=query,
        rows=rows,
        totals=_totals(rows),
        charts=_charts(rows, query) if rows else {},
        csv_href="/ui/usage.csv?" + urlencode(params),
        chart_note=len(rows) > CHART_GROUPS and query.group_by != "day",
        chart_groups=CHART_GROUPS,
    )


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: one that starts like a formula is prefixed."""
    text = "" if value is None else format(value, "f") if isinstance(value, Decimal) else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        usage = row.usage
        cells = (
            usage.group,
            row.name,
            usage.requests,
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens,
            usage.reasoning_tokens,
            usage.cost_usd,
            usage.unpriced_requests,
            usage.errors,
        )
        writer.writerow([safe_cell(cell) for cell in cells])
    return out.getvalue()


@router.get("/ui/usage.csv")
async def usage_csv(request: Request, viewer: SignedIn) -> Response:
    runtime = runtime_of(request)
    identities = runtime.identities
    assert identities is not None
    try:
        query = parse(request, viewer, datetime.now(UTC).date())
    except BadFilter as bad:
        raise Refused(400, "Bad usage filter", str(bad)) from None
    rows = await report(identities.database, query)
    filename = f"usage-by-{query.group_by}-{query.start.isoformat()}-to-{query.end.isoformat()}.csv"
    headers = {
        **SECURITY_HEADERS,
        "content-disposition": f'attachment; filename="{filename}"',
    }
    return Response(to_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
