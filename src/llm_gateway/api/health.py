"""Liveness and readiness probes: no auth, no upstream calls."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from llm_gateway.api.deps import RuntimeDep

router = APIRouter()


@router.get("/health")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(runtime: RuntimeDep, request: Request) -> JSONResponse:
    body: dict[str, object] = {"providers": sorted(runtime.providers), "models": runtime.catalog.names}
    checks = {"config": request.app.state.reloader.readiness(), **await runtime.readiness()}
    ready = all(ok for ok, _ in checks.values())
    if checks:
        body["checks"] = {name: detail for name, (_, detail) in checks.items()}
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **body}, status_code=200 if ready else 503
    )
