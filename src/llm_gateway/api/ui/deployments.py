"""`/ui/deployments`: every model group and deployment with its live health (circuit,
latency EWMA, requests in flight, recent requests and error rate, capacity used, the newest
failures), refreshed in place every two seconds by htmx from `/ui/deployments/table`.

The numbers are this instance's (`HealthBoard.snapshot`, no I/O); circuits opened by other
instances arrive here through the shared store, so the circuit column is fleet-wide.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.ui.guard import Operator, runtime_of
from llm_gateway.api.ui.pages import render

router = APIRouter(include_in_schema=False)

REFRESH_SECONDS = 2


def _table(request: Request) -> dict[str, Any]:
    """What the table shows: the rows per model group, a summary, and when it was read."""
    runtime = runtime_of(request)
    rows = runtime.executor.health.snapshot(runtime.catalog.groups)
    groups = [(model, list(members)) for model, members in groupby(rows, key=lambda row: row["model"])]
    return {
        "groups": groups,
        "total": len(rows),
        "open": sum(1 for row in rows if row["circuit"] != "closed"),
        "in_flight": sum(row["in_flight"] for row in rows),
        "updated": datetime.now(UTC),
        "refresh": REFRESH_SECONDS,
    }


@router.get("/ui/deployments")
async def deployments_page(request: Request, viewer: Operator) -> Response:
    return render(request, viewer, "deployments.html", **_table(request))


@router.get("/ui/deployments/table")
async def deployments_table(request: Request, viewer: Operator) -> Response:
    """The table alone, for the page's periodic refresh."""
    return render(request, viewer, "deployments_table.html", **_table(request))
