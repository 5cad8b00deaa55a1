"""A fake Google AI Studio (Generative Language API v1beta), behaviour chosen by the model id.

It speaks the real wire format: `POST /v1beta/models/{model}:{method}` with the key in
`x-goog-api-key`; `GenerateContentResponse` JSON; `streamGenerateContent?alt=sse` framed as
`data: <json>\\r\\n\\r\\n` (without `alt=sse` it answers a JSON array, as Google does);
Google error bodies `{"error": {"code", "message", "status", "details"}}`. Like the real
API it rejects unknown fields, empty parts, wrong roles, and function responses that do
not match the previous turn's calls, so a sloppy translation fails here too.

    echo (anything else)   "echo: <last user text>", streamed word by word
    tools                  call get_weather (with a thought signature), then answer from
                           the functionResponse; the signature must come back
    parallel               call get_weather twice in one turn
    thinking               a thought part, then text; usage with thoughts and cached tokens
    max-tokens             cut short: finishReason MAX_TOKENS
    safety                 candidate blocked: finishReason SAFETY, no content
    blocked                prompt blocked: promptFeedback.blockReason, no candidates
    cut                    stream one event, then close without a finishReason
    midstream-error        stream one event, then an error event
    error-<status>         a Google error (400, 403, 404, 429 with RetryInfo, 500, 503)
    error-context          400 INVALID_ARGUMENT "The input token count ... exceeds ..."
    early-end, drop, drip  streamed as tests/fakes/misbehaviour.py says (the terminal event
                           is the one with the finishReason)
    embedContent / batchEmbedContents on any model: deterministic vectors
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.misbehaviour import MODELS, StreamLog, write_stream

API_KEY = "gemini-test-key-0123456789"
THOUGHT_SIGNATURE = "c2lnbmF0dXJlLTE="  # base64("signature-1")
MODEL_VERSION = "gemini-2.5-flash"
QUOTA_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
REQUEST_FIELDS = frozenset(
    {
        "contents",
        "systemInstruction",
        "generationConfig",
        "tools",
        "toolConfig",
        "safetySettings",
        "cachedContent",
    }
)
CONFIG_FIELDS = frozenset(
    {
        "temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "seed",
        "presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema", "responseJsonSchema",
        "responseLogprobs", "logprobs", "thinkingConfig",
    }
)  # fmt: skip
DATA_FIELDS = frozenset({"text", "inlineData", "fileData", "functionCall", "functionResponse"})
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass
class Received:
    model: str
    method: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeGemini:
    requests: list[Received] = field(default_factory=list)
    streams: StreamLog = field(default_factory=StreamLog)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1beta/models/{target}", self.handle)
        return app

    def reset(self) -> None:
        self.requests.clear()
        self.streams.clear()

    def last(self) -> Received:
        return self.requests[-1]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        body = orjson.loads(await request.read())
        self.requests.append(Received(model, method, dict(request.query), dict(request.headers), body))
        if request.headers.get("x-goog-api-key") != API_KEY:
            return bad_key()
        if model.startswith("error-"):
            return google_error(model.removeprefix("error-"))
        if method in ("embedContent", "batchEmbedContents"):
            return embeddings(model, method, body)
        problem = validate(body) or signature_problem(model, body)
        if problem:
            return error_body(400, problem)
        events = answer(model, body)
        if method == "generateContent":
            return json_response(merge(events))
        if method != "streamGenerateContent":
            return error_body(404, f"Method {method} not found.")
        if request.query.get("alt") != "sse":
            return json_response(events)
        if model in MODELS:
            return await self.misbehave(request, model, events)
        return await stream(request, model, events)

    async def misbehave(
        self, request: web.Request, model: str, events: list[dict[str, Any]]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        *frames, terminal = [sse_frame(event) for event in events]
        filler = sse_frame(
            {"candidates": [{"content": {"parts": [{"text": "drip "}], "role": "model"}, "index": 0}]}
        )
        return await write_stream(
            request, response, frames, [terminal], model=model, filler=filler, after=1, log=self.streams
        )


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None) -> web.Response:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details is not None:
        error["details"] = details
    return json_response({"error": error}, status)


def bad_key() -> web.Response:
    message = "API key not valid. Please pass a valid API key."
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message},
    ]
    return error_body(400, message, details)


def google_error(kind: str) -> web.Response:
    if kind == "context":
        return error_body(
            400, "The input token count (1300000) exceeds the maximum number of tokens allowed (1048576)."
        )
    status = int(kind)
    if status == 429:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": QUOTA_METRIC,
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaValue": "10",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"},
        ]
        return error_body(
            429, "You exceeded your current quota, please check your plan and billing details.", details
        )
    messages = {
        400: "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\"",
        403: "Method doesn't allow unregistered callers (callers without established identity).",
        404: "models/error-404 is not found for API version v1beta, or is not supported for generateContent.",
        500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        503: "The model is overloaded. Please try again later.",
    }
    return error_body(status, messages.get(status, f"fake error {status}"))


def validate(body: dict[str, Any]) -> str | None:
    """What the real API refuses with 400 INVALID_ARGUMENT, in its own words."""
    for name in body:
        if name not in REQUEST_FIELDS:
            return f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
    for name in body.get("generationConfig") or {}:
        if name not in CONFIG_FIELDS:
            where = "at 'generation_config'"
            return f'Invalid JSON payload received. Unknown name "{name}" {where}: Cannot find field.'
    contents = body.get("contents")
    if not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    previous_calls = 0
    for index, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            return f"Please use a valid role: user, model. (contents[{index}])"
        parts = content.get("parts") or []
        if not parts:
            return f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty."
        for part in parts:
            if len(DATA_FIELDS & part.keys()) != 1:
                return f"* GenerateContentRequest.contents[{index}].parts: oneof field 'data' is already set."
        responses = sum(1 for p in parts if "functionResponse" in p)
        if previous_calls and responses != previous_calls:
            return (
                "Please ensure that the number of function response parts is equal to the number of "
                "function call parts of the function call turn."
            )
        previous_calls = sum(1 for p in parts if "functionCall" in p)
    return None


def signature_problem(model: str, body: dict[str, Any]) -> str | None:
    """Like Gemini 3: a function call sent back without its thought signature is refused."""
    if model != "tools":
        return None
    for content in body["contents"]:
        for part in content["parts"]:
            if "functionCall" in part and part.get("thoughtSignature") != THOUGHT_SIGNATURE:
                return "Function call is missing a thought_signature in functionCall parts."
    return None


def words(body: dict[str, Any]) -> int:
    texts = [p.get("text", "") for c in body.get("contents", []) for p in c["parts"]]
    texts += [p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", [])]
    return sum(len(t.split()) for t in texts)


def last_user_text(body: dict[str, Any]) -> str:
    for content in reversed(body["contents"]):
        if content["role"] == "user":
            texts = [p["text"] for p in content["parts"] if "text" in p]
            if texts:
                return " ".join(texts)
    return ""


def answer(model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer as the list of stream events; `merge` makes the non-streamed body of it."""
    prompt = words(body)
    base = {"modelVersion": MODEL_VERSION, "responseId": f"resp-{model}-{len(body['contents'])}"}
    if model == "blocked":
        usage = {"promptTokenCount": prompt, "totalTokenCount": prompt}
        feedback = {
            "blockReason": "SAFETY",
            "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
            ],
        }
        return [{"promptFeedback": feedback, "usageMetadata": usage, **base}]
    parts, finish, extra = answer_parts(model, body)
    events = []
    for index, part in enumerate(parts):
        candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
        if index == len(parts) - 1:
            candidate["finishReason"] = finish
        output = sum(len(str(p.get("text", "")).split()) for p in parts[: index + 1] if not p.get("thought"))
        usage = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output + extra.get("thoughtsTokenCount", 0),
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            **extra,
        }
        events.append({"candidates": [candidate], "usageMetadata": usage, **base})
    if not parts:
        rating = {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}
        candidate = {"finishReason": finish, "index": 0, "safetyRatings": [rating]}
        usage = {"promptTokenCount": prompt, "totalTokenCount": prompt}
        events.append({"candidates": [candidate], "usageMetadata": usage, **base})
    return events


def answer_parts(model: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, dict[str, int]]:
    if model in ("tools", "parallel") and body.get("tools"):
        last = body["contents"][-1]["parts"]
        results = [p["functionResponse"] for p in last if "functionResponse" in p]
        if results:
            outcome = results[-1]["response"]
            text = outcome.get("result", orjson.dumps(outcome).decode())
            return [{"text": "The weather is "}, {"text": f"{text}."}], "STOP", {}
        cities = ["Paris", "London"] if model == "parallel" else ["Paris"]
        calls = [{"functionCall": {"name": "get_weather", "args": {"city": c}}} for c in cities]
        calls[0]["thoughtSignature"] = THOUGHT_SIGNATURE
        return calls, "STOP", {}
    if model == "safety":
        return [], "SAFETY", {}
    text = f"echo: {last_user_text(body)}"
    if model == "max-tokens":
        return [{"text": "echo:"}], "MAX_TOKENS", {}
    pieces = text.split(" ")
    parts: list[dict[str, Any]] = [
        {"text": p if i == len(pieces) - 1 else p + " "} for i, p in enumerate(pieces)
    ]
    if model == "thinking":
        parts.insert(0, {"text": "Let me think.", "thought": True})
        return parts, "STOP", {"thoughtsTokenCount": 5, "cachedContentTokenCount": 2}
    return parts, "STOP", {}


def merge(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The non-streamed response: the events' parts joined in one candidate."""
    merged = {k: v for k, v in events[-1].items() if k != "candidates"}
    if "candidates" in events[-1]:
        parts = [p for e in events for p in e["candidates"][0].get("content", {}).get("parts", [])]
        candidate = {**events[-1]["candidates"][0]}
        if parts:
            candidate["content"] = {"parts": _join_text(parts), "role": "model"}
        merged["candidates"] = [candidate]
    return merged


def _join_text(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    joined: list[dict[str, Any]] = []
    for part in parts:
        plain = set(part) == {"text"}
        if plain and joined and set(joined[-1]) == {"text"}:
            joined[-1] = {"text": joined[-1]["text"] + part["text"]}
        else:
            joined.append(dict(part))
    return joined


def sse_frame(event: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\r\n\r\n"


async def stream(request: web.Request, model: str, events: list[dict[str, Any]]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for index, event in enumerate(events):
        if index == 1 and model in ("cut", "midstream-error"):
            if model == "midstream-error":
                error = {
                    "error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}
                }
                await response.write(b"data: " + orjson.dumps(error) + b"\r\n\r\n")
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write(b"data: " + orjson.dumps(event) + b"\r\n\r\n")
        await asyncio.sleep(0)
    await response.write_eof()
    return response


def embedding_values(text: str, dimensions: int | None) -> list[float]:
    values = [float(len(text)), 0.5, -0.25, 0.125, 1.0, -1.0, 0.0, 2.5]
    return values[: dimensions or 4]


def embeddings(model: str, method: str, body: dict[str, Any]) -> web.Response:
    if method == "embedContent":
        text = body["content"]["parts"][0]["text"]
        return json_response(
            {"embedding": {"values": embedding_values(text, body.get("outputDimensionality"))}}
        )
    vectors = []
    for index, item in enumerate(body.get("requests", [])):
        if item.get("model") != f"models/{model}":
            return error_body(
                400, f"* BatchEmbedContentsRequest.requests[{index}].model: model must be models/{model}"
            )
        text = item["content"]["parts"][0]["text"]
        vectors.append({"values": embedding_values(text, item.get("outputDimensionality"))})
    return json_response({"embeddings": vectors})
