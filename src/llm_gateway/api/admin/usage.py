"""`/admin/usage` (sums from the daily rollup) and `/admin/spend/logs` (the log, a page at a time).

Usage is read from `usage_daily` only, never by scanning the log: a report over a year
costs one row per day and group. The log is paged newest first, at most `MAX_PAGE` rows,
with an opaque cursor; every filter is validated (a 400 naming the field).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AfterValidator, BaseModel

from llm_gateway.api.admin.paging import Cursor, IdentitiesDep, Limit
from llm_gateway.api.admin.schemas import ID_PATTERN, Moment, storable
from llm_gateway.core.errors import InvalidRequest
from llm_gateway.store.spend_db import BadCursor, GroupBy, SpendStore

router = APIRouter(tags=["admin: usage"])

KeyId = Annotated[str | None, Query(pattern=ID_PATTERN, description="only this key's requests")]
TeamId = Annotated[str | None, Query(pattern=ID_PATTERN, description="only this team's requests")]
Day = Annotated[date | None, AfterValidator(lambda d: _in_range(d))]


def _in_range(day: date | None) -> date | None:
    if day is not None and not 1970 <= day.year <= 9999:
        raise ValueError("must be a day between the years 1970 and 9999")
    return day


class UsageOut(BaseModel):
    group: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal | None
    """Priced requests' cost; null when none in the group was priced."""
    unpriced_requests: int
    errors: int


class UsageList(BaseModel):
    data: list[UsageOut]


class SpendLogOut(BaseModel):
    at: datetime
    request_id: str
    key_id: str | None
    team_id: str | None
    end_user: str | None
    model: str | None
    deployment: str | None
    provider: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal | None
    estimated: bool
    latency_s: float
    ttft_s: float | None
    status: int
    error: str | None
    attempts: int
    fallback: str | None
    operation: str
    stream: bool
    cache: str | None = None
    cache_saved_usd: Decimal | None = None
    template_id: str | None = None
    template_version: str | None = None


class SpendLogList(BaseModel):
    data: list[SpendLogOut]
    next_cursor: str | None


@router.get("/usage", response_model=UsageList)
async def usage(
    identities: IdentitiesDep,
    group_by: GroupBy,
    start: Annotated[Day, Query(alias="from", description="first UTC day, included")] = None,
    end: Annotated[Day, Query(alias="to", description="last UTC day, included")] = None,
    key_id: KeyId = None,
    team_id: TeamId = None,
) -> UsageList:
    """Requests, tokens and cost per key, team, model, end user or UTC day."""
    if start is not None and end is not None and end < start:
        raise InvalidRequest("`to` is before `from`", param="to")
    found = await SpendStore(identities.database).usage(group_by, start, end, key_id, team_id)
    return UsageList(data=[UsageOut.model_validate(item, from_attributes=True) for item in found])


@router.get("/spend/logs", response_model=SpendLogList)
async def spend_logs(
    identities: IdentitiesDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    key_id: KeyId = None,
    team_id: TeamId = None,
    model: Annotated[
        str | None, Query(max_length=200), AfterValidator(lambda v: storable(v) if v is not None else None)
    ] = None,
    start: Annotated[Moment | None, Query(alias="from", description="included")] = None,
    end: Annotated[Moment | None, Query(alias="to", description="excluded")] = None,
) -> SpendLogList:
    """Spend rows newest first, `limit` (≤ 200) at a time; pass `next_cursor` for the next page."""
    store = SpendStore(identities.database)
    try:
        page = await store.logs(
            limit, cursor, key_id=key_id, team_id=team_id, model=model, start=start, end=end
        )
    except BadCursor as exc:
        raise InvalidRequest(str(exc), param="cursor") from None
    items: list[dict[str, Any]] = page.items
    return SpendLogList(
        data=[SpendLogOut.model_validate(item) for item in items], next_cursor=page.next_cursor
    )
