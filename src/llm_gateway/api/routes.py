"""The per-request routes, dispatched before FastAPI's router.

A small exact-path table in front of the app: `POST` to one of these paths goes straight to
its `Endpoint` (no router scan, no exception middleware, no dependency solving); any other
method there is a 405 in the route's dialect; every other path (admin, health, models,
OpenAPI) falls through to FastAPI.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from llm_gateway.api.anthropic import AnthropicCountTokens, AnthropicMessages
from llm_gateway.api.completions import OpenAICompletions
from llm_gateway.api.dialect import Dialect
from llm_gateway.api.embeddings import OpenAIEmbeddings
from llm_gateway.api.endpoint import Endpoint, send_json
from llm_gateway.api.openai import OpenAIChat
from llm_gateway.api.responses import OpenAIResponses, ResponsesInputTokens
from llm_gateway.api.simple import SimpleChat
from llm_gateway.core.errors import MethodNotAllowed

OPENAI_ERRORS = Dialect()
"""The error shape of every route that is not a per-request one: OpenAI's."""


class RouteTable:
    def __init__(self, endpoints: Mapping[str, Endpoint]) -> None:
        self._endpoints = dict(endpoints)

    def get(self, path: str) -> Endpoint | None:
        return self._endpoints.get(path)

    def dialect_for(self, path: str) -> Dialect:
        endpoint = self._endpoints.get(path)
        return endpoint.dialect if endpoint is not None else OPENAI_ERRORS


def default_routes() -> RouteTable:
    return RouteTable(
        {
            "/v1/chat/completions": Endpoint(OpenAIChat()),
            "/v1/embeddings": Endpoint(OpenAIEmbeddings()),
            "/api/chat": Endpoint(SimpleChat()),
            "/v1/messages": Endpoint(AnthropicMessages()),
            "/v1/messages/count_tokens": Endpoint(AnthropicCountTokens()),
            "/v1/completions": Endpoint(OpenAICompletions()),
            "/v1/responses": Endpoint(OpenAIResponses()),
            "/v1/responses/input_tokens": Endpoint(ResponsesInputTokens()),
        }
    )


class RoutesMiddleware:
    def __init__(self, app: ASGIApp, *, routes: RouteTable) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
        elif scope["method"] == "POST":
            await endpoint(scope, receive, send)
        else:
            error = MethodNotAllowed(f"{scope['method']} is not allowed on {scope['path']}; use POST")
            body = endpoint.dialect.error_body(error, scope["state"].get("request_id"))
            await send_json(send, 405, body, [(b"allow", b"POST")])
