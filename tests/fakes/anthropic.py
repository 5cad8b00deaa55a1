"""A fake Anthropic Messages API, with behaviour chosen by the upstream model id.

It speaks the real wire format (docs.anthropic.com, "Messages", "Streaming Messages",
"Errors", and the `anthropic` SDK's types): `x-api-key` and `anthropic-version` checked,
Message JSON, named SSE events (`message_start`, `content_block_start`, `ping`,
`content_block_delta` with `text_delta` / `input_json_delta` / `thinking_delta`,
`content_block_stop`, `message_delta`, `message_stop`, `error`), and error bodies
`{"type": "error", "error": {"type", "message"}, "request_id"}`.

    anything else      echo the last user text as "echo: <text>"
    tools              with `tools` and no tool_result yet: a text block and a `get_weather`
                       tool_use; a forced `tool_choice` (any/tool) gets the tool use alone, of the
                       named tool; once the last user turn holds a tool_result: answer from it
    cache              echo, with cache read/creation input tokens in usage
    thinking           a thinking block, then the echo
    max                echo, stopped by max_tokens
    error-<status>     that status with Anthropic's error type (429: retry-after 7)
    error-context      400 "prompt is too long"
    midstream-error    streams a text delta, then an `error` event (overloaded_error)
    early-error        streams an `error` event (overloaded_error) before message_start
    cut                streams message_start and a delta, then drops the connection
    early-end, drop, drip   streamed as tests/fakes/misbehaviour.py says

`/v1/messages/count_tokens` answers `{"input_tokens": 1000 + words}`, so a test can tell
a forwarded count from the gateway's own estimate.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.misbehaviour import MODELS, StreamLog, write_stream

Event = tuple[str, dict[str, Any]]

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeAnthropic:
    api_key: str
    requests: list[Received] = field(default_factory=list)
    streams: StreamLog = field(default_factory=StreamLog)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        return app

    def reset(self) -> None:
        self.requests.clear()
        self.streams.clear()

    def last(self) -> Received:
        return self.requests[-1]

    async def _receive(self, request: web.Request) -> dict[str, Any] | web.Response:
        body = orjson.loads(await request.read())
        self.requests.append(Received(request.path, dict(request.headers), body))
        if request.headers.get("x-api-key") != self.api_key:
            return error_response(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return error_response(400, "anthropic-version: header is required")
        result: dict[str, Any] = body
        return result

    async def count_tokens(self, request: web.Request) -> web.Response:
        body = await self._receive(request)
        if isinstance(body, web.Response):
            return body
        return web.json_response({"input_tokens": 1000 + count_words(body)})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await self._receive(request)
        if isinstance(body, web.Response):
            return body
        model = str(body.get("model", ""))
        if model.startswith("error-"):
            kind = model.removeprefix("error-")
            if kind == "context":
                return error_response(400, "prompt is too long: 250000 tokens > 200000 maximum")
            return error_response(int(kind), f"fake upstream error {kind}")
        message = answer(body, model)
        if body.get("stream"):
            return await self._stream(request, model, message)
        return web.Response(body=orjson.dumps(message), content_type="application/json")

    async def _stream(self, request: web.Request, model: str, message: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        if model == "early-error":
            await response.write(sse("error", error_body("overloaded_error", "Overloaded")))
            return response
        if model in MODELS:
            *frames, terminal = [sse(name, data) for name, data in message_events(message)]
            delta = {"type": "text_delta", "text": " drip"}
            filler = sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
            return await write_stream(
                request, response, frames, [terminal], model=model, filler=filler, after=3, log=self.streams
            )
        for index, (name, data) in enumerate(message_events(message)):
            if model == "midstream-error" and index == 4:
                await response.write(sse("error", error_body("overloaded_error", "Overloaded")))
                return response
            if model == "cut" and index == 3:
                assert request.transport is not None
                request.transport.close()
                return response
            await response.write(sse(name, data))
            await asyncio.sleep(0)
        await response.write_eof()
        return response


def sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake_0123"}


def error_response(status: int, message: str) -> web.Response:
    headers = {"retry-after": "7"} if status == 429 else {}
    body = error_body(ERROR_TYPES.get(status, "api_error"), message)
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def block_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if block.get("type") == "text":
            parts.append(block["text"])
        elif block.get("type") == "tool_result":
            parts.append(block_text(block.get("content")))
    return " ".join(parts)


def count_words(body: dict[str, Any]) -> int:
    system = body.get("system")
    words = len(block_text(system).split()) if system else 0
    return words + sum(len(block_text(m.get("content")).split()) for m in body.get("messages", []))


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            return block_text(message.get("content"))
    return ""


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    last = body["messages"][-1]
    content = last.get("content")
    if last.get("role") != "user" or isinstance(content, str):
        return []
    return [block for block in content if block.get("type") == "tool_result"]


def answer_blocks(body: dict[str, Any], model: str) -> tuple[list[dict[str, Any]], str]:
    if model == "tools" and body.get("tools"):
        results = tool_results(body)
        if results:
            return [
                {"type": "text", "text": f"The weather is {block_text(results[-1]['content'])}."}
            ], "end_turn"
        choice = body.get("tool_choice") or {}
        name = choice.get("name") if choice.get("type") == "tool" else "get_weather"
        call = {"type": "tool_use", "id": "toolu_fake_01", "name": name, "input": {"city": "Paris"}}
        if choice.get("type") in ("tool", "any"):
            return [call], "tool_use"  # a forced tool use comes without text before it
        return [{"type": "text", "text": "Let me check."}, call], "tool_use"
    blocks: list[dict[str, Any]] = [{"type": "text", "text": f"echo: {last_user_text(body)}"}]
    if model == "thinking":
        blocks.insert(0, {"type": "thinking", "thinking": "Let me think.", "signature": "sig_fake"})
    return blocks, "max_tokens" if model == "max" else "end_turn"


def answer(body: dict[str, Any], model: str) -> dict[str, Any]:
    blocks, stop_reason = answer_blocks(body, model)
    output = sum(len(b.get("text", "").split()) for b in blocks) or 1
    usage = {"input_tokens": count_words(body), "output_tokens": output}
    if model == "cache":
        usage |= {"cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}
    else:
        usage |= {"cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    return {
        "id": "msg_fake_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def pieces(text: str, size: int = 6) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def message_events(message: dict[str, Any], split: Callable[[str], list[str]] = pieces) -> list[Event]:
    """The event sequence the Messages API streams for `message`, text split by `split`."""
    usage = dict(message["usage"])
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    events: list[Event] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        events += block_events(index, block, split)
        if index == 0:
            events.insert(2, ("ping", {"type": "ping"}))
    final_usage = {"output_tokens": usage["output_tokens"]}
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message.get("stop_sequence")}
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def block_events(index: int, block: dict[str, Any], split: Callable[[str], list[str]]) -> list[Event]:
    kind = block["type"]
    if kind == "text":
        start: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": part} for part in split(block["text"])]
    elif kind == "tool_use":
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": ""}]
        deltas += [{"type": "input_json_delta", "partial_json": p} for p in split(json.dumps(block["input"]))]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": part} for part in split(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
    else:
        raise ValueError(kind)
    events: list[Event] = [
        ("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
    ]
    events += [
        ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas
    ]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events
