"""The `POST /v1/completions` front door: OpenAI's legacy completions API for any model.

Errors and streams are OpenAI's: `text_completion` chunks as SSE, then `[DONE]`; whether a
deployment serves it natively or through chat is the service's choice
(services/completions.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from llm_gateway.api.dialect import take_fallbacks
from llm_gateway.api.openai import OpenAIChat
from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.types import JSON
from llm_gateway.services.completions import check_completion_request


class OpenAICompletions(OpenAIChat):
    """Legacy completions: their own checks, OpenAI's SSE framing and errors (the chat dialect's)."""

    name = "openai.completions"

    def parse(self, ctx: RequestContext, body: JSON, headers: Mapping[str, str]) -> Call:
        check_completion_request(body)
        body, ctx.fallbacks = take_fallbacks(body)
        return Call(Operation.COMPLETIONS, body, model=body.get("model"), stream=bool(body.get("stream")))
