"""The OpenAI-compatible front door: `POST /v1/chat/completions`, and the models API
(`GET /v1/models`, `GET /v1/models/{id}`), which answers in Anthropic's shape too for
Anthropic-styled requests, and in Gemini's for requests with `x-goog-api-key`, since
all three SDKs call the same path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.anthropic import anthropic_styled, model_object, model_page
from llm_gateway.api.auth import Caller
from llm_gateway.api.body import check_chat_request
from llm_gateway.api.deps import RuntimeDep
from llm_gateway.api.dialect import Dialect, take_fallbacks
from llm_gateway.api.errors import callers_dialect
from llm_gateway.api.gemini import KEY_HEADER
from llm_gateway.api.gemini_models import model_get, model_list
from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.errors import InvalidRequest, ModelNotFound
from llm_gateway.core.types import JSON
from llm_gateway.routing.deployments import Listed
from llm_gateway.services.access import may_use

DONE = b"data: [DONE]\n\n"


class OpenAIChat(Dialect):
    name = "openai.chat"

    def parse(self, ctx: RequestContext, body: JSON, headers: Mapping[str, str]) -> Call:
        check_chat_request(body)
        body, ctx.fallbacks = take_fallbacks(body)
        return Call(Operation.CHAT, body, model=body.get("model"), stream=bool(body.get("stream")))

    async def render_stream(
        self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]
    ) -> AsyncIterator[bytes]:
        """OpenAI chat chunks as SSE, then `[DONE]`."""
        async for chunk in chunks:
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        yield DONE


router = APIRouter()

PATTERN_NOTE = "a wildcard: any model name matching this pattern is served"
MAX_PAGE = 1000


def openai_model(entry: Listed | str) -> JSON:
    """One model in OpenAI's shape; aliases and patterns say what they are in extra fields."""
    if isinstance(entry, str):
        return {"id": entry, "object": "model", "created": 0, "owned_by": "llm-gateway"}
    model = openai_model(entry.id)
    if entry.alias_of is not None:
        model["alias_of"] = entry.alias_of
    if entry.pattern:
        model["pattern"] = True
        model["note"] = PATTERN_NOTE
    return model


def display_name(entry: Listed) -> str:
    if entry.pattern:
        return f"{entry.id} ({PATTERN_NOTE}{f', as {entry.alias_of}' if entry.alias_of else ''})"
    return f"{entry.id} (alias of {entry.alias_of})" if entry.alias_of else entry.id


def page_size(value: str | None) -> int:
    try:
        limit = int(value) if value is not None else 20
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit: must be an integer from 1 to {MAX_PAGE}", param="limit")
    return limit


def render(body: JSON) -> Response:
    return Response(content=orjson.dumps(body), media_type="application/json")


@router.get("/v1/models")
@callers_dialect
async def list_models(request: Request, runtime: RuntimeDep, caller: Caller) -> Response:
    """OpenAI's model list, or Anthropic's (paged) for an Anthropic-styled request: the
    models the caller may use (a virtual key sees only its own and its team's)."""
    if KEY_HEADER in request.headers:
        return model_list(runtime.catalog, caller, request.query_params)
    listed = [entry for entry in runtime.catalog.listed() if may_use(caller, entry.id)]
    if not anthropic_styled(request.headers):
        return render({"object": "list", "data": [openai_model(entry) for entry in listed]})
    query = request.query_params
    models = [model_object(entry.id, display_name(entry)) for entry in listed]
    return render(
        model_page(models, page_size(query.get("limit")), query.get("after_id"), query.get("before_id"))
    )


@router.get("/v1/models/{model_id:path}")
@callers_dialect
async def retrieve_model(model_id: str, request: Request, runtime: RuntimeDep, caller: Caller) -> Response:
    """One model by any name the gateway routes (a model, an alias, a name a wildcard
    matches) that the caller may use; anything else is a 404 in the caller's dialect."""
    if KEY_HEADER in request.headers:
        return model_get(runtime.catalog, caller, model_id)
    group = runtime.catalog.group(model_id)
    if not may_use(caller, model_id) and not may_use(caller, group.name):
        raise ModelNotFound(f"The model {model_id!r} does not exist or you do not have access to it.")
    if anthropic_styled(request.headers):
        return render(model_object(model_id))
    return render(openai_model(model_id))
