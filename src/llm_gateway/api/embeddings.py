"""`POST /v1/embeddings`: OpenAI's embeddings API for any model whose provider can embed."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.body import read_json_object
from llm_gateway.api.deps import require_key, runtime
from llm_gateway.api.disconnect import until_disconnected
from llm_gateway.api.served import served_headers

router = APIRouter()


async def create_embeddings(request: Request) -> Response:
    """`POST /v1/embeddings`, a plain Starlette route like the other per-request routes."""
    require_key(request)
    embeddings = runtime(request).embeddings
    body = await read_json_object(request)
    served = await until_disconnected(request.receive, embeddings.embed(body))
    return Response(
        content=orjson.dumps(served.value), media_type="application/json", headers=served_headers(served)
    )


router.add_route("/v1/embeddings", create_embeddings, methods=["POST"])
