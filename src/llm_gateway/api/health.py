"""Liveness and readiness probes: no auth, no upstream calls."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from llm_gateway.api.deps import RuntimeDep
from llm_gateway.routing.breaker import Circuit
from llm_gateway.runtime import Runtime

router = APIRouter()


@router.get("/health")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


def healthy_deployments(runtime: Runtime) -> dict[str, dict[str, int]]:
    """Per model: how many of its deployments' circuits are closed, of how many. Reported,
    not judged: an open circuit recovers by itself, and a model with none healthy still has
    its fallbacks, so it does not make the instance unready."""
    board = runtime.executor.health
    now = board.clock()
    return {
        group.name: {
            "healthy": sum(board.of(t).breaker.circuit(now) is Circuit.CLOSED for t in group.targets),
            "deployments": len(group.targets),
        }
        for group in runtime.catalog.groups
    }


@router.get("/ready")
async def ready(runtime: RuntimeDep, request: Request) -> JSONResponse:
    body: dict[str, object] = {
        "providers": sorted(runtime.providers),
        "models": runtime.catalog.names,
        "deployments": healthy_deployments(runtime),
    }
    checks = {"config": request.app.state.reloader.readiness(), **await runtime.readiness()}
    ready = all(ok for ok, _ in checks.values())
    if checks:
        body["checks"] = {name: detail for name, (_, detail) in checks.items()}
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **body}, status_code=200 if ready else 503
    )
