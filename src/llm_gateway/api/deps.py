"""`Annotated` dependencies for the admin and health routes (FastAPI resolves them).

The per-request routes do not use these: they go through `api/endpoint.py`, a plain ASGI
wrapper, because FastAPI's dependency solving is a visible share of the CPU per request
(docs/performance.md has the measurement).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from llm_gateway.runtime import Runtime


async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
