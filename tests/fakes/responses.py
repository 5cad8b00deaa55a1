"""The fake OpenAI upstream with OpenAI's Responses API (`POST /v1/responses`) as well.

Chat completions and embeddings behave as in tests/fakes/openai.py, plus one chat model:

    json        with a `response_format`, answers `{"city": "Paris"}`

`/v1/responses` answers in the Responses API's wire format, streamed (typed events with
`sequence_number`) or not, by upstream model id:

    anything else   echo the last user text: `echo: <text>`
    tools           with tools and no `function_call_output` in the input, call `get_weather`
                    with {"city": "Paris"}; with one, answer "The weather is <output>."
    json            with a json_schema `text.format`, answer `{"city": "Paris"}`
    error-<status>  an OpenAI-format error with that status
    midstream-error stream `response.created` and `response.in_progress`, then an `error` event

With `store` (the default) it keeps each response, and `previous_response_id` must name
one it kept (else a 404, as OpenAI answers); `responses` records every body it got.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.openai import FakeOpenAI, Received, completion, error_response

JSON_ANSWER = '{"city": "Paris"}'


@dataclass
class FakeResponses(FakeOpenAI):
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/v1/responses", self.responses)
        return app

    def reset(self) -> None:
        super().reset()
        self.stored.clear()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == path]

    async def _behave(self, request: web.Request, body: dict[str, Any], model: str) -> web.StreamResponse:
        if model == "json" and body.get("response_format"):
            message = {"role": "assistant", "content": JSON_ANSWER}
            if body.get("stream"):
                return await self._stream(request, body, model, message)
            return web.json_response(
                completion(body, model, message), dumps=lambda o: orjson.dumps(o).decode()
            )
        return await super()._behave(request, body, model)

    async def responses(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw)
        self.requests.append(Received(request.path, dict(request.headers), body, raw))
        model = str(body.get("model", ""))
        if model.startswith("error-"):
            return error_response(model.removeprefix("error-"))
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self.stored:
            error = {
                "message": f"Previous response with id '{previous}' not found.",
                "type": "invalid_request_error",
                "param": "previous_response_id",
                "code": "previous_response_not_found",
            }
            return web.Response(
                status=404, body=orjson.dumps({"error": error}), content_type="application/json"
            )
        response = make_response(body, model, answer(body, model))
        if body.get("store", True):
            self.stored[response["id"]] = response
        if not body.get("stream"):
            return web.Response(body=orjson.dumps(response), content_type="application/json")
        stream = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await stream.prepare(request)
        events = response_events(response)
        if model == "midstream-error":
            failure = {"type": "error", "code": "server_error", "message": "upstream exploded", "param": None}
            events = [*events[:2], {**failure, "sequence_number": 2}]
        for event in events:
            await stream.write(
                f"event: {event['type']}\n".encode() + b"data: " + orjson.dumps(event) + b"\n\n"
            )
        await stream.write_eof()
        return stream


def input_list(body: dict[str, Any]) -> list[dict[str, Any]]:
    value = body.get("input")
    return [{"role": "user", "content": value}] if isinstance(value, str) else list(value or [])


def last_user_text(body: dict[str, Any]) -> str:
    for item in reversed(input_list(body)):
        if item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content if p.get("type") == "input_text")
    return ""


def answer(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The output item: a message, or a function call."""
    if model == "tools" and body.get("tools"):
        outputs = [i for i in input_list(body) if i.get("type") == "function_call_output"]
        if not outputs:
            call_id = "call_" + uuid.uuid4().hex[:12]
            arguments = '{"city": "Paris"}'
            return {
                "type": "function_call",
                "call_id": call_id,
                "name": "get_weather",
                "arguments": arguments,
            }
        return message(f"The weather is {outputs[-1]['output']}.")
    format_ = (body.get("text") or {}).get("format") or {}
    if model == "json" and format_.get("type") == "json_schema":
        return message(JSON_ANSWER)
    return message(f"echo: {last_user_text(body)}")


def message(text: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"type": "message", "role": "assistant", "status": "completed", "content": [part]}


def make_response(body: dict[str, Any], model: str, item: dict[str, Any]) -> dict[str, Any]:
    prefix = "fc" if item["type"] == "function_call" else "msg"
    item = {"id": f"{prefix}_{uuid.uuid4().hex}", **item}
    if item["type"] == "function_call":
        item["status"] = "completed"
    words = len(last_user_text(body).split()) or 1
    usage = {
        "input_tokens": words,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": words + 3,
    }
    return {
        "id": f"resp_upstream_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "model": f"{model}-2025-01-01",
        "output": [item],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "text": body.get("text") or {"format": {"type": "text"}},
        "store": body.get("store", True),
        "metadata": body.get("metadata") or {},
        "usage": usage,
    }


def response_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream OpenAI sends for `response` (one output item)."""
    item = response["output"][0]
    started = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
    ]
    where = {"item_id": item["id"], "output_index": 0}
    if item["type"] == "function_call":
        events.append(
            {"type": "response.output_item.added", "output_index": 0, "item": {**item, "arguments": ""}}
        )
        arguments = item["arguments"]
        for piece in (arguments[:5], arguments[5:]):
            events.append({"type": "response.function_call_arguments.delta", **where, "delta": piece})
        events.append({"type": "response.function_call_arguments.done", **where, "arguments": arguments})
    else:
        events.append(
            {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}}
        )
        text = item["content"][0]["text"]
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        events.append({"type": "response.content_part.added", **where, "content_index": 0, "part": empty})
        words = text.split(" ")
        for index, word in enumerate(words):
            delta = {"type": "response.output_text.delta", **where, "content_index": 0, "logprobs": []}
            events.append({**delta, "delta": word if index == len(words) - 1 else word + " "})
        done = {"type": "response.output_text.done", **where, "content_index": 0, "logprobs": []}
        events.append({**done, "text": text})
        part = item["content"][0]
        events.append({"type": "response.content_part.done", **where, "content_index": 0, "part": part})
    events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    events.append({"type": "response.completed", "response": response})
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]
