"""`POST /admin/config/reload`: re-read and apply the config file (what SIGHUP does), or a
400 that says why nothing changed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.reloader import ConfigReloader, ReloadFailed

router = APIRouter(tags=["config"])


@router.post("/config/reload")
async def reload_config(request: Request) -> dict[str, Any]:
    """Validate the config file fully and swap it in; in-flight requests finish on the old one."""
    reloader: ConfigReloader = request.app.state.reloader
    try:
        state = await reloader.reload()
    except ReloadFailed as failure:
        raise InvalidRequest(str(failure), code="config_invalid") from None
    return {"reloaded": True, **state.to_json()}


@router.get("/config")
async def config_state(request: Request) -> dict[str, Any]:
    """The running config's generation and the last reload's error, if it failed."""
    reloader: ConfigReloader = request.app.state.reloader
    return {"source": reloader.source.path, **reloader.state.to_json()}
