"""`GET /v1/me`: a caller's own view of itself, for a virtual key's holder.

Its name, team, the models it may use (the catalog filtered by every scope's globs),
and each scope's limits (a team's `end_user_budget_usd`: what each end user may spend
per period). `spent_usd` and `remaining_usd` come from the runtime's
`spend` view (`services/identities.SpendView`, served by the governance hook from its
counters): the spend settled in the scope's current budget period, null for a scope
without a budget (nothing is counted) or while the counters' store is unreachable.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from llm_gateway.api.auth import Caller
from llm_gateway.api.deps import RuntimeDep
from llm_gateway.core.context import Scope
from llm_gateway.services.access import usable
from llm_gateway.services.identities import SpendView

router = APIRouter()


def _money(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


async def _scope(scope: Scope, spend: SpendView | None) -> dict[str, Any]:
    limits = scope.limits
    spent = await spend.spent_usd(scope) if spend is not None else None
    remaining = (
        max(limits.budget_usd - spent, Decimal(0))
        if spent is not None and limits.budget_usd is not None
        else None
    )
    return {
        "kind": scope.kind,
        "id": scope.id,
        "name": scope.name,
        "models": list(scope.models) if scope.models is not None else None,
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "max_parallel": limits.max_parallel,
        "budget_usd": _money(limits.budget_usd),
        "budget_period": limits.budget_period,
        "max_hold_usd": _money(limits.max_hold_usd),
        "end_user_budget_usd": _money(scope.end_users.budget_usd) if scope.end_users else None,
        "spent_usd": _money(spent),
        "remaining_usd": _money(remaining),
    }


@router.get("/v1/me")
async def me(runtime: RuntimeDep, caller: Caller) -> Response:
    """Who the presented key is, what it may use, and the limits that bind it (key, then team)."""
    team = next((scope for scope in caller.scopes if scope.kind == "team"), None)
    body = {
        "object": "principal",
        "kind": caller.kind,
        "id": caller.key_id,
        "name": caller.name,
        "team": {"id": team.id, "name": team.name} if team is not None else None,
        "metadata": caller.metadata,
        "models": usable(caller, runtime.catalog.names),
        "scopes": [await _scope(scope, runtime.spend) for scope in caller.scopes],
    }
    return Response(content=orjson.dumps(body), media_type="application/json")
