"""The `POST /v1/embeddings` front door: OpenAI's embeddings API for any model that can embed."""

from __future__ import annotations

from collections.abc import Mapping

from llm_gateway.api.dialect import Dialect, take_fallbacks
from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.types import JSON
from llm_gateway.services.embeddings import check_embedding_request


class OpenAIEmbeddings(Dialect):
    name = "openai.embeddings"

    def parse(self, ctx: RequestContext, body: JSON, headers: Mapping[str, str]) -> Call:
        body, ctx.fallbacks = take_fallbacks(body)
        check_embedding_request(body)
        return Call(Operation.EMBEDDINGS, body, model=body.get("model"))
