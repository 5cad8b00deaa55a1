"""The per-request routes, dispatched before FastAPI's router.

A small exact-path table in front of the app, and for the Gemini door one prefix test
(`/v1beta/` or `/v1/models`, only on a miss) and a split of `{model}:{method}`: `POST` to one of these goes
straight to its `Endpoint` (no router scan, no exception middleware, no dependency solving); any other
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
from llm_gateway.api.gemini import METHODS, MODEL, GeminiDialect, key_from_query, split_method
from llm_gateway.api.openai import OpenAIChat
from llm_gateway.api.responses import OpenAIResponses, ResponsesInputTokens
from llm_gateway.api.simple import SimpleChat
from llm_gateway.api.ui.playground import PATH as PLAYGROUND
from llm_gateway.api.ui.playground import PlaygroundChat
from llm_gateway.core.errors import MethodNotAllowed

OPENAI_ERRORS = Dialect()
"""The error shape of every route that is not a per-request one: OpenAI's."""
GEMINI_ERRORS = GeminiDialect()


GEMINI = "/v1beta/"
GEMINI_PATHS = (GEMINI, "/v1/models")


class RouteTable:
    def __init__(
        self, endpoints: Mapping[str, Endpoint], gemini: Mapping[str, Endpoint] | None = None
    ) -> None:
        self._endpoints = dict(endpoints)
        self._gemini = dict(gemini or {})

    def get(self, path: str) -> Endpoint | None:
        return self._endpoints.get(path)

    def gemini(self, scope: Scope) -> Endpoint | None:
        """`/v1beta/models/{model}:{method}` → the method's endpoint, the model left in
        `path_params`; a `?key=` becomes a header first (GET routes read it too)."""
        key_from_query(scope)
        found = split_method(scope["path"])
        endpoint = self._gemini.get(found[1]) if found is not None else None
        if endpoint is not None and found is not None:
            scope["path_params"] = {MODEL: found[0]}
        return endpoint

    def dialect_for(self, path: str) -> Dialect:
        endpoint = self._endpoints.get(path)
        if endpoint is not None:
            return endpoint.dialect
        gemini = path.startswith(GEMINI) or split_method(path) is not None
        return GEMINI_ERRORS if gemini else OPENAI_ERRORS


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
            PLAYGROUND: PlaygroundChat(),
        },
        {method: Endpoint(dialect) for method, dialect in METHODS.items()},
    )


class RoutesMiddleware:
    def __init__(self, app: ASGIApp, *, routes: RouteTable) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = self.routes.get(scope["path"])
        if endpoint is None and scope["path"].startswith(GEMINI_PATHS):
            endpoint = self.routes.gemini(scope)
        if endpoint is None:
            await self.app(scope, receive, send)
        elif scope["method"] == "POST":
            await endpoint(scope, receive, send)
        else:
            error = MethodNotAllowed(f"{scope['method']} is not allowed on {scope['path']}; use POST")
            body = endpoint.dialect.error_body(error, scope["state"].get("request_id"))
            await send_json(send, 405, body, [(b"allow", b"POST")])
