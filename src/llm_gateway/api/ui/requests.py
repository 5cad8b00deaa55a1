"""`/ui/requests` (the request log, 50 at a time, newest first) and `/ui/requests/{id}` (one
request: who, what, its cost, its timeline, its bodies when captured).

The page reads `RequestLog.page` with the spend log's cursor, so it costs one index range
scan whatever the log's size; the filters are checked with the admin API's own rules
(`api/admin/schemas.py`) and a bad one re-renders the form with the reason, never a 500.
A virtual key sees its own requests only: its key filter is forced to itself, and another
key's request is the same 404 as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from llm_gateway.api.admin.schemas import ID_PATTERN, Moment, storable
from llm_gateway.api.ui.charts import spans
from llm_gateway.api.ui.guard import Refused, SignedIn, runtime_of
from llm_gateway.api.ui.pages import render
from llm_gateway.api.ui.session import Viewer
from llm_gateway.store.request_log import RequestLog
from llm_gateway.store.spend_db import BadCursor

router = APIRouter(include_in_schema=False)

PAGE = 50
FIELDS = ("key_id", "team_id", "model", "status", "from", "to")
"""The filters, as the form names them (and the next page's link repeats them)."""
LABELS = {"key_id": "Key", "team_id": "Team", "model": "Model", "status": "Status", "from": "From"}
LABELS |= {"to": "To", "cursor": "Page"}

Id = Annotated[str, Field(pattern=ID_PATTERN)]
Text = Annotated[str, Field(max_length=200), AfterValidator(storable)]


class Filters(BaseModel):
    """The request log's query, checked as `/admin/requests` checks it."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True, populate_by_name=True)

    key_id: Id | None = None
    team_id: Id | None = None
    model: Text | None = None
    status: Annotated[int, Field(ge=100, le=599)] | None = None
    start: Moment | None = Field(None, alias="from")
    end: Moment | None = Field(None, alias="to")
    cursor: Text | None = None


def _form(query: Mapping[str, str]) -> dict[str, str]:
    """The filters as typed: blank fields (an empty form input) are no filter."""
    return {name: query[name].strip() for name in (*FIELDS, "cursor") if query.get(name, "").strip()}


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    if first["type"] == "string_pattern_mismatch":
        return f"{LABELS.get(field, field)}: not an id (up to 64 letters, digits, '.', '_' or '-')"
    return f"{LABELS.get(field, field)}: {first['msg']}"


def _scope(viewer: Viewer) -> str | None:
    """The key a viewer is held to (None: every key)."""
    return None if viewer.admin or viewer.read_only else viewer.key_id


def _checked(form: dict[str, str]) -> Filters | str:
    """The filters, or what is wrong with them (for the page to say)."""
    try:
        filters = Filters.model_validate(form)
    except ValidationError as error:
        return _problem(error)
    if filters.start is not None and filters.end is not None and filters.end < filters.start:
        return "To: is before From"
    return filters


@router.get("/ui/requests")
async def request_log(request: Request, viewer: SignedIn) -> Response:
    runtime = runtime_of(request)
    assert runtime.identities is not None
    form, own = _form(request.query_params), _scope(viewer)
    if own is not None:
        form.pop("key_id", None)
    values: dict[str, Any] = {"form": form, "rows": [], "next_href": None, "own": own, "first_page": True}
    values["first_href"] = "/ui/requests"
    filters = _checked(form)
    if isinstance(filters, str):
        return render(request, viewer, "requests.html", 400, error=filters, **values)
    try:
        page = await RequestLog(runtime.identities.database).page(
            PAGE,
            filters.cursor,
            filters={
                "key_id": own or filters.key_id,
                "team_id": filters.team_id,
                "model": filters.model,
                "status": filters.status,
            },
            start=filters.start,
            end=filters.end,
        )
    except BadCursor:
        error = "Page: that page link is not valid; start again from the first page"
        return render(request, viewer, "requests.html", 400, error=error, **values)
    kept = {name: value for name, value in form.items() if name != "cursor"}
    values["first_href"] = "/ui/requests" + (f"?{urlencode(kept)}" if kept else "")
    if page.next_cursor is not None:
        values["next_href"] = "/ui/requests?" + urlencode({**kept, "cursor": page.next_cursor})
    rows = [{**item, "href": "/ui/requests/" + quote(item["request_id"], safe="")} for item in page.items]
    values.update(rows=rows, first_page=filters.cursor is None)
    return render(request, viewer, "requests.html", error=None, **values)


@dataclass(frozen=True, slots=True)
class Timeline:
    segments: list[tuple[str, float, float, str]]
    """(label, start, length, outcome) for `charts.spans`, seconds from the request's start."""
    upstream_s: float
    overhead_s: float
    total_s: float


def timeline(item: Mapping[str, Any]) -> Timeline:
    """The request's timeline: each attempt, time to first token, gateway overhead and the
    total.

    The log keeps each attempt's length but not when it began, so the layout is inferred:
    attempts run one after another (the executor's retries and fallbacks are sequential)
    and a hedge starts at 0, alongside the attempt it races. Upstream time is where the last
    attempt ends; the gateway's overhead is the rest of the total latency, drawn after it
    (it is spent before and after the upstream, in an order the log does not keep)."""
    segments: list[tuple[str, float, float, str]] = []
    at = upstream = 0.0
    for number, attempt in enumerate(item["attempt_log"], start=1):
        length = float(attempt["latency_s"])
        start = 0.0 if attempt["hedge"] else at
        if not attempt["hedge"]:
            at += length
        upstream = max(upstream, start + length)
        kind = "hedge" if attempt["hedge"] else "attempt"
        segments.append((f"{kind} {number}: {attempt['deployment']}", start, length, str(attempt["outcome"])))
    total = float(item["latency_s"])
    if item["ttft_s"] is not None:
        segments.append(("time to first token", 0.0, float(item["ttft_s"]), "ttft"))
    overhead = max(total - upstream, 0.0)
    segments.append(("gateway overhead", min(upstream, total), overhead, "overhead"))
    segments.append(("total", 0.0, total, "total"))
    return Timeline(segments, upstream, overhead, total)


def _body(text: str | None) -> str | None:
    """A captured body, indented when it is whole JSON (a cut one is shown as stored)."""
    if text is None:
        return None
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return text


@router.get("/ui/requests/{request_id:path}")
async def one_request(request: Request, viewer: SignedIn, request_id: str) -> Response:
    runtime = runtime_of(request)
    assert runtime.identities is not None
    missing = Refused(404, "Not found", "The request log holds no request with that id.")
    if len(request_id) > 200 or "\x00" in request_id:
        raise missing
    item = await RequestLog(runtime.identities.database).get(request_id)
    own = _scope(viewer)
    if item is None or (own is not None and item["key_id"] != own):
        raise missing
    drawn = timeline(item)
    end = max(drawn.total_s, drawn.upstream_s)
    return render(
        request,
        viewer,
        "request.html",
        item=item,
        timeline=drawn,
        chart=spans(drawn.segments, end, f"Timeline of request {request_id}"),
        request_body=_body(item.get("request_body")),
        response_body=_body(item.get("response_body")),
    )
