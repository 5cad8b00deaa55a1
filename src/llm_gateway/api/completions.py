"""The `POST /v1/completions` front door: OpenAI's legacy completions API for any model.

Errors and streams are OpenAI's: `text_completion` chunks as SSE, then `[DONE]`; whether a
deployment serves it natively or through chat is the service's choice
(services/completions.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from llm_gateway.api.dialect import Dialect, take_fallbacks
from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.types import JSON
from llm_gateway.services.completions import check_completion_request

DONE = b"data: [DONE]\n\n"


class OpenAICompletions(Dialect):
    name = "openai.completions"

    def parse(self, ctx: RequestContext, body: JSON, headers: Mapping[str, str]) -> Call:
        check_completion_request(body)
        body, ctx.fallbacks = take_fallbacks(body)
        return Call(Operation.COMPLETIONS, body, model=body.get("model"), stream=bool(body.get("stream")))

    async def render_stream(
        self, ctx: RequestContext, call: Call, chunks: AsyncIterator[Any]
    ) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        yield DONE
