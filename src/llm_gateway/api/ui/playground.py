"""`/ui/playground`: try a model from the browser, through the normal API path.

The page's script posts an OpenAI chat request (streamed) to `POST /ui/playground/chat`,
which is the chat endpoint itself (`api/endpoint.py`) with one difference: the caller is
the signed-in session's principal rather than a presented key (the browser never holds
one). So everything the API applies applies here: the key's allowed models, its limits
and budget, guardrails, routing and fallbacks, the spend row and the metrics.
`GET /ui/playground/cost/{request_id}` reads the reply's cost back from the request log
once its spend row is written.
"""

from __future__ import annotations

from collections.abc import Awaitable

import orjson
from fastapi import APIRouter, Request
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Scope

from llm_gateway.api.endpoint import Endpoint
from llm_gateway.api.openai import OpenAIChat
from llm_gateway.api.ui.guard import Refused, SignedIn, check_script_request, runtime_of, viewer_for
from llm_gateway.api.ui.pages import money, render
from llm_gateway.api.ui.session import SessionEnded
from llm_gateway.core.context import Principal
from llm_gateway.core.errors import AuthenticationFailed, PermissionDenied
from llm_gateway.runtime import Runtime
from llm_gateway.services.access import usable
from llm_gateway.store.request_log import RequestLog

router = APIRouter(include_in_schema=False)

PATH = "/ui/playground/chat"


class PlaygroundChat(Endpoint):
    """The chat endpoint, authenticated by the UI session (and its CSRF header)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(OpenAIChat())

    def authenticate(
        self, runtime: Runtime, headers: Headers, scope: Scope
    ) -> Principal | Awaitable[Principal]:
        request = Request(scope)
        try:
            viewer = viewer_for(request)
            check_script_request(request, viewer)
        except SessionEnded as ended:
            raise AuthenticationFailed(ended.reason or "sign in to the UI first") from None
        except Refused as refused:
            raise PermissionDenied(refused.message) from None
        return viewer.principal


@router.get("/ui/playground")
async def playground(request: Request, viewer: SignedIn) -> Response:
    runtime = runtime_of(request)
    models = usable(viewer.principal, runtime.catalog.names)
    return render(request, viewer, "playground.html", models=models, default=runtime.config.default_model)


@router.get("/ui/playground/cost/{request_id}")
async def cost(request: Request, viewer: SignedIn, request_id: str) -> Response:
    """A playground reply's cost, once the spend log has it (404 until then)."""
    identities = runtime_of(request).identities
    assert identities is not None
    found = await RequestLog(identities.database).get(request_id[:200]) if "\x00" not in request_id else None
    if found is None or not (viewer.admin or viewer.read_only or found.get("key_id") == viewer.key_id):
        return Response(status_code=404)
    body = {"cost": money(found.get("cost_usd")), "request_id": request_id}
    return Response(orjson.dumps(body), media_type="application/json", headers={"cache-control": "no-store"})
