"""`GET /metrics`: the Prometheus text format, behind `metrics.token` when one is set.

A 404 when metrics are off (`metrics.enabled: false`), like any unknown path.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.deps import RuntimeDep
from llm_gateway.core.errors import AuthenticationFailed, NotFound

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    collected = runtime.metrics
    if collected is None:
        raise NotFound("metrics are off (metrics.enabled: false)")
    token = collected.settings.token
    if token is not None:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise AuthenticationFailed("GET /metrics needs Authorization: Bearer <metrics.token>")
    body, content_type = collected.render()
    return Response(body, media_type=content_type)
