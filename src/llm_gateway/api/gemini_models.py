"""The Gemini door's models API: `GET /v1beta/models` (paged) and `GET /v1beta/models/{model}`,
and the same under `/v1/models` for a request with `x-goog-api-key` (api/openai.py asks
`model_list` / `model_get`: google-genai for Python calls Gemini's `v1`).

Every model the caller may use, as a Gemini `Model` named `models/<name>`; the methods a
model supports say what its deployments can do (`embedContent` only where one embeds).
Errors answer in Google's shape (`api/errors.py` sends `/v1beta/` paths that way).
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.auth import Caller
from llm_gateway.api.deps import RuntimeDep
from llm_gateway.api.errors import callers_dialect
from llm_gateway.core.capabilities import Capability
from llm_gateway.core.context import Principal
from llm_gateway.core.errors import InvalidRequest, ModelNotFound
from llm_gateway.core.types import JSON
from llm_gateway.routing.deployments import Listed, ModelCatalog
from llm_gateway.services.access import may_use

CHAT_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]
EMBED_METHODS = ["embedContent", "batchEmbedContents"]
DEFAULT_PAGE = 50
MAX_PAGE = 1000

router = APIRouter()


def methods(catalog: ModelCatalog, name: str) -> list[str]:
    try:
        group = catalog.group(name)
    except ModelNotFound:  # a wildcard pattern itself: whatever it matches chats
        return list(CHAT_METHODS)
    embeds = any(Capability.EMBEDDINGS in t.provider.capabilities for t in group.targets)
    return CHAT_METHODS + EMBED_METHODS if embeds else list(CHAT_METHODS)


def described(entry: Listed) -> str:
    if entry.pattern:
        return f"{entry.id} (a wildcard: any model name matching it is served)"
    return f"{entry.id} (alias of {entry.alias_of})" if entry.alias_of else entry.id


def model_object(catalog: ModelCatalog, entry: Listed | str) -> JSON:
    """One Gemini `Model` (the gateway knows no token limits, so they are absent)."""
    name = entry if isinstance(entry, str) else entry.id
    shown = name if isinstance(entry, str) else described(entry)
    return {
        "name": f"models/{name}",
        "baseModelId": name,
        "version": "llm-gateway",
        "displayName": shown,
        "description": shown,
        "supportedGenerationMethods": methods(catalog, name),
    }


def page(query_size: str | None, token: str | None) -> tuple[int, int]:
    """(offset, size) from `pageSize` and `pageToken` (the offset, as a string)."""
    try:
        size = int(query_size) if query_size else DEFAULT_PAGE
        offset = int(token) if token else 0
    except ValueError:
        raise InvalidRequest("pageSize and pageToken must be integers", param="pageSize") from None
    if size < 1 or offset < 0:
        raise InvalidRequest("pageSize must be positive and pageToken not negative", param="pageSize")
    return offset, min(size, MAX_PAGE)


def render(body: JSON) -> Response:
    return Response(content=orjson.dumps(body), media_type="application/json")


def model_list(catalog: ModelCatalog, caller: Principal, query: Mapping[str, str]) -> Response:
    """A page of the models `caller` may use (`pageSize`, `pageToken`, `nextPageToken`)."""
    listed = [entry for entry in catalog.listed() if may_use(caller, entry.id)]
    offset, size = page(query.get("pageSize"), query.get("pageToken"))
    body: JSON = {"models": [model_object(catalog, e) for e in listed[offset : offset + size]]}
    if offset + size < len(listed):
        body["nextPageToken"] = str(offset + size)
    return render(body)


def model_get(catalog: ModelCatalog, caller: Principal, model_id: str) -> Response:
    """One model by any name the gateway routes that the caller may use, else a 404."""
    name = model_id.removeprefix("models/")
    group = catalog.group(name)
    if not may_use(caller, name) and not may_use(caller, group.name):
        raise ModelNotFound(f"models/{name} is not found or you do not have access to it.")
    return render(model_object(catalog, name))


@router.get("/v1beta/models")
@callers_dialect
async def list_models(request: Request, runtime: RuntimeDep, caller: Caller) -> Response:
    return model_list(runtime.catalog, caller, request.query_params)


@router.get("/v1beta/models/{model_id:path}")
@callers_dialect
async def get_model(model_id: str, runtime: RuntimeDep, caller: Caller) -> Response:
    return model_get(runtime.catalog, caller, model_id)
