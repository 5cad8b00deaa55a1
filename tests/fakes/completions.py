"""The fake OpenAI-compatible upstream with OpenAI's legacy `POST /v1/completions` too (as
vLLM, llama.cpp and OpenAI itself serve it): it answers `echo: <prompt>` as a
`text_completion`, streamed as one chunk per word then `[DONE]`, with usage at the end
when `stream_options.include_usage` asks. Chat and embeddings are `FakeOpenAI`'s."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.openai import FakeOpenAI, Received


@dataclass
class FakeCompletions(FakeOpenAI):
    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/v1/completions", self.completions)
        return app

    async def completions(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw)
        self.requests.append(Received(request.path, dict(request.headers), body, raw))
        text = f"echo: {body.get('prompt')}"
        base = {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body["model"],
        }
        usage = {
            "prompt_tokens": 2,
            "completion_tokens": len(text.split()),
            "total_tokens": 2 + len(text.split()),
        }
        if not body.get("stream"):
            choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
            return web.json_response({**base, "choices": [choice], "usage": usage})
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        words = text.split(" ")
        for index, word in enumerate(words):
            last = index == len(words) - 1
            choice: dict[str, Any] = {
                "text": word if last else word + " ",
                "index": 0,
                "logprobs": None,
                "finish_reason": "stop" if last else None,
            }
            await response.write(b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
