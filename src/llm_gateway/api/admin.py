"""The operator's API, master key only: `GET /admin/deployments` (each deployment's health)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from llm_gateway.api.deps import RuntimeDep, check_key, runtime
from llm_gateway.core.errors import PermissionDenied


def require_master_key(request: Request) -> None:
    """Only the master key opens the admin API; without one configured, it stays shut."""
    master_key = runtime(request).config.master_key
    if not master_key:
        raise PermissionDenied("the admin API is disabled: set master_key in the config to use it")
    check_key(request, master_key.get_secret_value())


async def _require_master_key(request: Request) -> None:
    require_master_key(request)  # async: FastAPI would run a plain def in a worker thread


router = APIRouter(prefix="/admin", dependencies=[Depends(_require_master_key)])


@router.get("/deployments")
async def deployments(runtime: RuntimeDep) -> Response:
    """Circuit state, requests in flight, EWMA latency and recent error rate per deployment."""
    rows = runtime.executor.health.snapshot(runtime.catalog.groups)
    return Response(content=orjson.dumps({"object": "list", "data": rows}), media_type="application/json")
