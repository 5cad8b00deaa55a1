"""`GET /admin/deployments`: each deployment's health."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from llm_gateway.api.deps import RuntimeDep

router = APIRouter(tags=["admin"])


@router.get("/deployments")
async def deployments(runtime: RuntimeDep) -> Response:
    """Circuit state, requests in flight, EWMA latency and recent error rate per deployment."""
    rows = runtime.executor.health.snapshot(runtime.catalog.groups)
    return Response(content=orjson.dumps({"object": "list", "data": rows}), media_type="application/json")
