"""`/admin/requests` (the request log, a page at a time) and `/admin/requests/{request_id}`.

The request log is the spend log read request by request (`store/request_log.py`): who
called, which model and deployment served, tokens, cost (null when unpriced), timings, the
outcome, and each upstream attempt with its deployment and outcome. Pages are newest first,
at most `MAX_PAGE` rows, with the spend log's opaque cursor; every filter is validated (a
400 naming the field) and has an index, so a page stays fast however large the log.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AfterValidator, BaseModel

from llm_gateway.api.admin.paging import Cursor, IdentitiesDep, Limit
from llm_gateway.api.admin.schemas import ID_PATTERN, Moment, storable
from llm_gateway.core.errors import InvalidRequest, NotFound
from llm_gateway.store.request_log import RequestLog
from llm_gateway.store.spend_db import BadCursor

router = APIRouter(tags=["admin: requests"])


class AttemptOut(BaseModel):
    deployment: str
    provider: str
    outcome: str
    """`answered`, `failed` or `abandoned`."""
    latency_s: float
    ttft_s: float | None
    error: str | None
    """The failure's type (`UpstreamServerError`, ...), never its message."""
    status: int | None
    group: str | None
    """The public model the attempt served (a fallback's name when it differs)."""
    hedge: bool


class RequestOut(BaseModel):
    request_id: str
    at: datetime
    key_id: str | None
    team_id: str | None
    end_user: str | None
    model: str | None
    deployment: str | None
    provider: str | None
    operation: str
    stream: bool
    status: int
    error: str | None
    latency_s: float
    ttft_s: float | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    estimated: bool
    cost_usd: Decimal | None
    unpriced: bool
    fallback: str | None
    cache: str | None
    attempt_count: int
    attempts: list[AttemptOut]
    request_body: str | None = None
    """Captured for keys or teams with `log_bodies` (lookup by id only): JSON text, secrets
    redacted, cut to `spend_log.max_body_bytes` characters; null when not captured."""
    response_body: str | None = None


class RequestList(BaseModel):
    data: list[RequestOut]
    next_cursor: str | None


def _out(item: dict[str, Any]) -> RequestOut:
    return RequestOut.model_validate(
        {
            **item,
            "unpriced": item["cost_usd"] is None,
            "attempt_count": item["attempts"],
            "attempts": item["attempt_log"],
        }
    )


Id = Annotated[str | None, Query(pattern=ID_PATTERN)]
Model = Annotated[
    str | None, Query(max_length=200), AfterValidator(lambda v: storable(v) if v is not None else None)
]


@router.get("/requests", response_model=RequestList)
async def requests(
    identities: IdentitiesDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    key_id: Id = None,
    team_id: Id = None,
    model: Model = None,
    status: Annotated[int | None, Query(ge=100, le=599, description="the HTTP status returned")] = None,
    start: Annotated[Moment | None, Query(alias="from", description="included")] = None,
    end: Annotated[Moment | None, Query(alias="to", description="excluded")] = None,
) -> RequestList:
    """Requests newest first, `limit` (≤ 200) at a time; pass `next_cursor` for the next page."""
    if start is not None and end is not None and end < start:
        raise InvalidRequest("`to` is before `from`", param="to")
    filters: dict[str, str | int | None] = {
        "key_id": key_id,
        "team_id": team_id,
        "model": model,
        "status": status,
    }
    try:
        log = RequestLog(identities.database)
        page = await log.page(limit, cursor, filters=filters, start=start, end=end)
    except BadCursor as exc:
        raise InvalidRequest(str(exc), param="cursor") from None
    return RequestList(data=[_out(item) for item in page.items], next_cursor=page.next_cursor)


@router.get("/requests/{request_id}", response_model=RequestOut)
async def request(identities: IdentitiesDep, request_id: str) -> RequestOut:
    """One request's metadata and attempts; 404 when the log holds no request with that id."""
    if len(request_id) > 200 or "\x00" in request_id:
        raise NotFound("no request with that id")
    found = await RequestLog(identities.database).get(request_id)
    if found is None:
        raise NotFound("no request with that id")
    return _out(found)
