"""The operator's API, master key only: `GET /admin/deployments` (each deployment's health)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from llm_gateway.api.auth import require_master_key
from llm_gateway.api.deps import RuntimeDep


async def _master_key_only(request: Request) -> None:
    require_master_key(request.headers, request.app.state.runtime.master_key)


router = APIRouter(prefix="/admin", dependencies=[Depends(_master_key_only)])


@router.get("/deployments")
async def deployments(runtime: RuntimeDep) -> Response:
    """Circuit state, requests in flight, EWMA latency and recent error rate per deployment."""
    rows = runtime.executor.health.snapshot(runtime.catalog.groups)
    return Response(content=orjson.dumps({"object": "list", "data": rows}), media_type="application/json")
