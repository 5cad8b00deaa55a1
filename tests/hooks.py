"""A request hook the gateway under test loads from its config (`hooks: [tests.hooks:RecordingHook]`).

It writes one JSON line per hook call to the file named by `LLM_GATEWAY_TEST_HOOK_LOG`, so a
test can count, from outside the process, what the pipeline called on each path; and it
refuses any request whose `user` (or Anthropic `metadata.user_id`) is `refuse-me`, as a
policy hook would.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.errors import LimitExceeded
from llm_gateway.core.types import Usage
from llm_gateway.services.hooks import Answer, Hook

LOG_VARIABLE = "LLM_GATEWAY_TEST_HOOK_LOG"
REFUSED_USER = "refuse-me"


class RecordingHook(Hook):
    name = "recording"

    def __init__(self) -> None:
        self._path = os.environ[LOG_VARIABLE]

    def _write(self, ctx: RequestContext, event: str, **fields: Any) -> None:
        line = {"event": event, "request_id": ctx.request_id, "dialect": ctx.dialect, **fields}
        with open(self._path, "ab") as log:
            log.write(orjson.dumps(line) + b"\n")

    async def before(self, ctx: RequestContext, call: Call) -> Answer | None:
        self._write(ctx, "before", operation=call.operation, stream=call.stream, model=call.model)
        metadata = call.body.get("metadata")
        user = call.body.get("user") or (metadata.get("user_id") if isinstance(metadata, dict) else None)
        if user == REFUSED_USER:
            raise LimitExceeded("refused by the test policy")
        return None

    async def after(self, ctx: RequestContext, call: Call, value: Any) -> Any:
        self._write(ctx, "after")
        return value

    def on_end(
        self, ctx: RequestContext, call: Call, usage: Usage | None, error: BaseException | None
    ) -> None:
        self._write(ctx, "end", usage=usage, error=type(error).__name__ if error is not None else None)
