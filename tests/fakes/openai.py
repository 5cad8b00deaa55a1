"""A fake OpenAI-compatible upstream, with behaviour chosen by the upstream model id.

Model ids (the deployment's `model` in a test config) select what the fake does, so one
fake serves many scenarios at once:

    anything else          echo the last user message (stream or not), with usage
    tools                  call the `get_weather` tool, then answer from its result
    error-<status>         an OpenAI-format error with that status (429 adds retry-after: 7)
    error-context          400 with code context_length_exceeded
    garbage                200 with a body that is not JSON
    hang                   never answer (until the client goes away)
    reset                  close the connection without answering
    cut-<n>                stream n chunks, then drop the connection
    slow-<ms>              wait <ms> before answering / before the first chunk
    midstream-error        stream one chunk, then an error event
    drip-<ms>[-<n>]        stream n chunks (default: a minute's worth) <ms> apart (a long answer)
    flaky-<k>-<status>[-<ms>][-<tag>]
                           the first k requests for this model id since `reset()` fail with
                           <status> (with `retry-after-ms: <ms>` if given), later ones echo;
                           a trailing tag only makes the id unique
    early-end, drop, drip  streamed as tests/fakes/misbehaviour.py says
    no-usage               echo, but a stream never ends with usage, even when asked
    chars-<n>              echo, streamed <n> characters a chunk (a card number over several chunks)

With `api_key` set, a request without `authorization: Bearer <api_key>` is a 401.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.misbehaviour import MODELS, StreamLog, write_stream


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes


@dataclass
class FakeOpenAI:
    """State shared between the fake's thread and the test: what came in, what was cancelled."""

    requests: list[Received] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    streams: StreamLog = field(default_factory=StreamLog)
    api_key: str | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        return app

    def reset(self) -> None:
        self.requests.clear()
        self.cancelled.clear()
        self.completed.clear()
        self.seen.clear()
        self.streams.clear()

    def last(self) -> Received:
        return self.requests[-1]

    async def chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw)
        self.requests.append(Received(request.path, dict(request.headers), body, raw))
        model = str(body.get("model", ""))
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return invalid_key()
        try:
            response = await self._behave(request, body, model)
        except asyncio.CancelledError:
            self.cancelled.append(model)
            raise
        self.completed.append(model)
        return response

    async def _behave(self, request: web.Request, body: dict[str, Any], model: str) -> web.StreamResponse:
        self.seen[model] = self.seen.get(model, 0) + 1
        if model.startswith("flaky-") and (failure := flaky_failure(model, self.seen[model])) is not None:
            return failure
        if model.startswith("error-"):
            return error_response(model.removeprefix("error-"))
        if model == "garbage":
            return web.Response(body=b"<html>oops</html>", content_type="text/html")
        if model == "hang":
            await asyncio.sleep(3600)
        if model == "reset":
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(1)
        if model.startswith("slow-"):
            await asyncio.sleep(int(model.removeprefix("slow-")) / 1000)
        message = answer_message(body, model)
        if body.get("stream") and model in MODELS:
            return await self.misbehave(request, body, model, message)
        if body.get("stream"):
            return await self._stream(request, body, model, message)
        return web.json_response(completion(body, model, message), dumps=lambda o: orjson.dumps(o).decode())

    async def _stream(
        self, request: web.Request, body: dict[str, Any], model: str, message: dict[str, Any]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        chunks = stream_chunks(body, model, message)
        cut = int(model.removeprefix("cut-")) if model.startswith("cut-") else None
        drip_ms = 0.0
        if model.startswith("drip-"):
            interval, _, count = model.removeprefix("drip-").partition("-")
            drip_ms = int(interval)
            chunks = drip_chunks(chunks, int(count) if count else 60_000 // max(1, int(interval)))
        for index, chunk in enumerate(chunks):
            if cut is not None and index == cut:
                assert request.transport is not None
                request.transport.close()
                return response
            if model == "midstream-error" and index == 1:
                await response.write(
                    b'data: {"error": {"message": "upstream exploded", "type": "server_error"}}\n\n'
                )
                return response
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            await asyncio.sleep(drip_ms / 1000)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def misbehave(
        self, request: web.Request, body: dict[str, Any], model: str, message: dict[str, Any]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        chunks = stream_chunks(body, model, message)
        frames = [sse(chunk) for chunk in chunks]
        filler = sse(drip_chunks(chunks, 1)[1])
        terminal = [b"data: [DONE]\n\n"]
        return await write_stream(
            request, response, frames, terminal, model=model, filler=filler, after=1, log=self.streams
        )

    async def embeddings(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = orjson.loads(raw)
        self.requests.append(Received(request.path, dict(request.headers), body, raw))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.1, 0.2, float(i)]} for i in range(len(inputs))
        ]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            }
        )


def error_response(kind: str) -> web.Response:
    if kind == "context":
        status, code = 400, "context_length_exceeded"
        message = "This model's maximum context length is 8192 tokens."
    else:
        status, code = int(kind), f"fake_{kind}"
        message = f"fake upstream error {kind}"
    headers = {"retry-after": "7"} if status == 429 else {}
    body = {"error": {"message": message, "type": "fake_error", "param": None, "code": code}}
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def invalid_key() -> web.Response:
    error = {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": None}
    body = {"error": {**error, "code": "invalid_api_key"}}
    return web.Response(status=401, body=orjson.dumps(body), content_type="application/json")


def flaky_failure(model: str, count: int) -> web.Response | None:
    """The error a `flaky-<k>-<status>[-<ms>]` model answers with on its `count`-th request."""
    parts = model.split("-")
    failures, status = int(parts[1]), int(parts[2])
    if count > failures:
        return None
    headers = {"retry-after-ms": parts[3]} if len(parts) > 3 and parts[3].isdigit() else {}
    body = {"error": {"message": f"flaky failure {count}", "type": "fake_error", "param": None, "code": None}}
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            return str(content)
    return ""


def answer_message(body: dict[str, Any], model: str) -> dict[str, Any]:
    messages = body.get("messages", [])
    if model == "tools" and body.get("tools"):
        results = [m for m in messages if m.get("role") == "tool"]
        if results:
            return {"role": "assistant", "content": f"The weather is {results[-1]['content']}."}
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_fake_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        }
    return {"role": "assistant", "content": f"echo: {last_user_text(body)}"}


def usage_for(body: dict[str, Any], message: dict[str, Any]) -> dict[str, int]:
    prompt = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
    completion_tokens = len(str(message.get("content") or "").split()) or 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def completion(body: dict[str, Any], model: str, message: dict[str, Any]) -> dict[str, Any]:
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage_for(body, message),
    }


def stream_chunks(body: dict[str, Any], model: str, message: dict[str, Any]) -> list[dict[str, Any]]:
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    if message.get("tool_calls"):
        call = message["tool_calls"][0]
        head = {
            "index": 0,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        arguments = call["function"]["arguments"]
        for part in (arguments[:5], arguments[5:]):
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
        chunks.append(chunk({}, "tool_calls"))
    elif model.startswith("chars-"):
        size, text = int(model.removeprefix("chars-")), str(message["content"])
        chunks += [chunk({"content": text[i : i + size]}) for i in range(0, len(text), size)]
    else:
        words = str(message["content"]).split(" ")
        chunks += [chunk({"content": w if i == len(words) - 1 else w + " "}) for i, w in enumerate(words)]
        chunks.append(chunk({}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage") and model != "no-usage":
        chunks.append({**base, "choices": [], "usage": usage_for(body, message)})
    return chunks


def drip_chunks(chunks: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` one-word chunks between the head and the finish of `chunks`."""
    word = {**chunks[1], "choices": [{"index": 0, "delta": {"content": "drip "}, "finish_reason": None}]}
    return [chunks[0], *([word] * count), chunks[-1]]
