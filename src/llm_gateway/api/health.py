"""Liveness and readiness probes: no auth, no upstream calls."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from llm_gateway.api.deps import RuntimeDep

router = APIRouter()


@router.get("/health")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(
        {"status": "ready", "providers": sorted(runtime.providers), "models": runtime.catalog.names}
    )
