"""A fake Azure OpenAI resource: deployments in the path, `api-version`, `api-key` or Entra bearer.

It checks what real Azure checks (route, api-version, credential) and answers in Azure's
dialect of the OpenAI format: `prompt_filter_results` / `content_filter_results`, a first
stream chunk with empty `choices` and `model`, and its content-filter errors. Behaviour is
chosen by the deployment name (from the path, or from the body's `model` on the v1 route):

    content-filter        400 code=content_filter, the prompt was filtered
    filtered-output       200 whose finish_reason is content_filter (stream: the last chunk)
    midstream-filter      stream one chunk, then an error event with code content_filter
    missing-deployment    404 DeploymentNotFound
    early-end, drop, drip streamed as tests/fakes/misbehaviour.py says
    tools, error-<status>, error-context, anything else: as tests/fakes/openai.py
"""

from __future__ import annotations

import asyncio
import base64
import struct
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.misbehaviour import MODELS, StreamLog, write_stream
from tests.fakes.openai import (
    Received,
    answer_message,
    completion,
    drip_chunks,
    error_response,
    sse,
    stream_chunks,
)

API_KEY = "azure-api-key-0123456789abcdef"
AD_TOKEN = "eyJ0eXAiOiJKV1Qi.fake-entra-token.signature"
API_VERSIONS = frozenset({"2024-06-01", "2024-10-21", "2025-04-01-preview"})
V1_VERSIONS = frozenset({None, "preview", "latest"})
UPSTREAM_MODEL = "gpt-4o-2024-08-06"
SAFE = {"filtered": False, "severity": "safe"}
FILTER_RESULTS = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
FILTERED_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry."
)


def encoded(vector: list[float], body: dict[str, Any]) -> list[float] | str:
    """The official SDK asks for base64 (little-endian float32) unless told otherwise."""
    if body.get("encoding_format") == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def azure_error(http_status: int, code: str, message: str, **extra: Any) -> web.Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return web.Response(status=http_status, body=orjson.dumps(body), content_type="application/json")


def content_filter_error() -> web.Response:
    inner = {
        "code": "ResponsibleAIPolicyViolation",
        "content_filter_result": {**FILTER_RESULTS, "violence": {"filtered": True, "severity": "high"}},
    }
    return azure_error(
        400, "content_filter", FILTERED_MESSAGE, type=None, param="prompt", status=400, innererror=inner
    )


@dataclass
class FakeAzure:
    api_key: str
    ad_token: str
    requests: list[Received] = field(default_factory=list)
    streams: StreamLog = field(default_factory=StreamLog)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self.chat)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self.embeddings)
        app.router.add_post("/openai/v1/chat/completions", self.chat)
        app.router.add_post("/openai/v1/embeddings", self.embeddings)
        return app

    def reset(self) -> None:
        self.requests.clear()
        self.streams.clear()

    def last(self) -> Received:
        return self.requests[-1]

    async def _receive(self, request: web.Request) -> tuple[dict[str, Any], str, web.Response | None]:
        raw = await request.read()
        body = orjson.loads(raw)
        self.requests.append(Received(request.path_qs, dict(request.headers), body, raw))
        deployment = request.match_info.get("deployment") or str(body.get("model", ""))
        return body, deployment, self._refusal(request, deployment)

    def _refusal(self, request: web.Request, deployment: str) -> web.Response | None:
        version = request.query.get("api-version")
        v1 = request.path.startswith("/openai/v1/")
        if (v1 and version not in V1_VERSIONS) or (not v1 and version is None):
            return azure_error(404, "404", "Resource not found")
        if not v1 and version not in API_VERSIONS:
            return azure_error(400, "BadRequest", "API version not supported")
        if (
            request.headers.get("api-key") != self.api_key
            and request.headers.get("authorization") != f"Bearer {self.ad_token}"
        ):
            return azure_error(
                401, "401", "Access denied due to invalid subscription key or wrong API endpoint."
            )
        if deployment == "missing-deployment":
            return azure_error(
                404, "DeploymentNotFound", "The API deployment for this resource does not exist."
            )
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body, deployment, refusal = await self._receive(request)
        if refusal is not None:
            return refusal
        if deployment == "content-filter":
            return content_filter_error()
        if deployment.startswith("error-"):
            return error_response(deployment.removeprefix("error-"))
        message = answer_message(body, deployment)
        if body.get("stream"):
            return await self._stream(request, body, deployment, message)
        answer = completion(body, UPSTREAM_MODEL, message)
        answer["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": FILTER_RESULTS}]
        answer["choices"][0]["content_filter_results"] = FILTER_RESULTS
        if deployment == "filtered-output":
            answer["choices"][0]["finish_reason"] = "content_filter"
            answer["choices"][0]["message"]["content"] = None
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def _stream(
        self, request: web.Request, body: dict[str, Any], deployment: str, message: dict[str, Any]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        prompt_results = [{"prompt_index": 0, "content_filter_results": FILTER_RESULTS}]
        annotation = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": prompt_results,
        }
        chunks = [annotation, *stream_chunks(body, UPSTREAM_MODEL, message)]
        if deployment in MODELS:
            filler = sse(drip_chunks(chunks[1:], 1)[1])
            frames = [sse(chunk) for chunk in chunks]
            return await write_stream(
                request,
                response,
                frames,
                [b"data: [DONE]\n\n"],
                model=deployment,
                filler=filler,
                after=2,
                log=self.streams,
            )
        for index, chunk in enumerate(chunks):
            if deployment == "midstream-filter" and index == 2:
                error = {
                    "error": {
                        "message": FILTERED_MESSAGE,
                        "type": None,
                        "param": "prompt",
                        "code": "content_filter",
                        "status": 400,
                    }
                }
                await response.write(b"data: " + orjson.dumps(error) + b"\n\n")
                return response
            if deployment == "filtered-output" and chunk["choices"] and chunk["choices"][0]["finish_reason"]:
                chunk["choices"][0]["finish_reason"] = "content_filter"
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            await asyncio.sleep(0)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        body, _deployment, refusal = await self._receive(request)
        if refusal is not None:
            return refusal
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = [[0.5, -0.5, float(i)] for i in range(len(inputs))]
        data = [
            {"object": "embedding", "index": i, "embedding": encoded(v, body)} for i, v in enumerate(vectors)
        ]
        usage = {"prompt_tokens": 2 * len(inputs), "total_tokens": 2 * len(inputs)}
        answer = {"object": "list", "data": data, "model": "text-embedding-3-small", "usage": usage}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")
