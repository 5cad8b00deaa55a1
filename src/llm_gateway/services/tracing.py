"""The tracing hook: what the server span needs that only the service sees.

It leaves the request's `Call` (the resolved public model, whether it streams, and, for
`tracing.capture_content`, the prompt) and the non-streaming answer (finish reasons, the
completion) in `ctx.extras`, where the tracing middleware reads them when the request ends.
For a stream it leaves an empty `StreamedAnswer` instead, which the stream's usage meter
fills with the answer's id and finish reasons from the chunks it reads anyway.
Being in the chain also makes the pipeline meter usage, so the span carries token counts
even when no other hook is configured. Added by the runtime only when `tracing:` is set.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.core.context import Call, RequestContext
from llm_gateway.observability.spans import ANSWER, CALL, STREAMED, StreamedAnswer
from llm_gateway.services.hooks import Answer, Hook


class TracingHook(Hook):
    name = "tracing"

    async def before(self, ctx: RequestContext, call: Call) -> Answer | None:
        ctx.extras[CALL] = call
        if call.stream:
            ctx.extras[STREAMED] = StreamedAnswer()
        return None

    async def after(self, ctx: RequestContext, call: Call, value: Any) -> Any:
        ctx.extras[ANSWER] = value
        return value
