"""`POST /v1/embeddings`: OpenAI's embeddings API for any model whose provider can embed."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_gateway.api.body import read_json_object
from llm_gateway.api.deps import Authorized, EmbeddingServiceDep
from llm_gateway.api.disconnect import until_disconnected
from llm_gateway.api.served import served_headers

router = APIRouter(dependencies=[Authorized])


@router.post("/v1/embeddings")
async def create_embeddings(request: Request, embeddings: EmbeddingServiceDep) -> Response:
    body = await read_json_object(request)
    served = await until_disconnected(request.receive, embeddings.embed(body))
    return Response(
        content=orjson.dumps(served.value), media_type="application/json", headers=served_headers(served)
    )
