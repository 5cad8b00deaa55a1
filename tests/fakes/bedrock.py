"""A fake Bedrock runtime: Converse, ConverseStream and InvokeModel (Titan, Cohere embeddings).

It verifies every request's SigV4 signature by recomputing it with botocore from the
same fake credentials (or accepts a Bedrock API key as a bearer token), validates the
Converse body against the API's rules, and encodes ConverseStream in the real binary
event-stream framing (prelude, typed headers, CRC32s). Behaviour is chosen by model id:

    tools                      call get_weather (text + toolUse), then answer from the toolResult
    image                      describe the images received (their bytes are kept in `images`)
    guardrail                  stopReason guardrail_intervened
    length                     stopReason max_tokens
    cache                      usage with cacheReadInputTokens / cacheWriteInputTokens
    error-<ExceptionName>      that error (x-amzn-ErrorType, status from the service model)
    error-context              ValidationException "Input is too long for requested model."
    midstream-<exceptionType>  stream one delta, then that exception event
    cut                        stream one delta, then end the body without messageStop
    early-end, drop, drip      streamed as tests/fakes/misbehaviour.py says (the terminal events
                               are messageStop and metadata)
    amazon.titan-embed-*, cohere.embed-*   InvokeModel embeddings (a text "error-<Name>" fails so)
    anything else              echo the last user text
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes.misbehaviour import MODELS, StreamLog, write_stream

JSON = dict[str, Any]
Event = tuple[str, JSON]

REGION = "us-east-1"
CONFIG_KEYS = ("AKIDGATEWAYCONFIG001", "config-secret/0123456789abcdefghij", None)
"""Access key id, secret and session token the gateway's config names."""
ENV_KEYS = ("ASIAGATEWAYSESSION01", "env-secret/jihgfedcba9876543210", "FwoGZXIvYXdzEFAKE-session-token")
"""Temporary credentials the gateway process finds in the standard AWS environment variables."""
API_KEY = "bedrock-api-key-ABSKfake0123456789"

ERROR_STATUS = {
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "ModelErrorException": 424,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
    "ServiceQuotaExceededException": 400,
}
STREAM_EXCEPTIONS = (
    "throttlingException",
    "modelStreamErrorException",
    "internalServerException",
    "serviceUnavailableException",
    "validationException",
)
ERROR_MESSAGES = {
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
    "ResourceNotFoundException": "Could not resolve the foundation model from the provided model identifier.",
}
CONVERSE_KEYS = frozenset({
    "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
    "promptVariables", "additionalModelResponseFieldPaths", "requestMetadata", "performanceConfig",
    "serviceTier", "outputConfig",
})  # fmt: skip
BLOCK_KEYS = frozenset({
    "text", "image", "document", "video", "audio", "toolUse", "toolResult", "guardContent", "cachePoint",
    "reasoningContent",
})  # fmt: skip
INFERENCE_KEYS = frozenset({"maxTokens", "temperature", "topP", "stopSequences"})
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total and header lengths, CRC), headers, payload, CRC."""
    encoded = b"".join(
        struct.pack("B", len(name))
        + name.encode()
        + b"\x07"
        + struct.pack(">H", len(value.encode()))
        + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event: str, payload: JSON) -> bytes:
    """Bedrock pads every event with a `p` field of random length; decoders must ignore it."""
    padded = {**payload, "p": "abcdefghijklmnopqrstuvwxyz"[: len(event) % 26]}
    headers = {":event-type": event, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, orjson.dumps(padded))


def exception_frame(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, orjson.dumps({"message": message}))


def words(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text)


def converse_events(
    content: list[JSON], stop_reason: str, usage: JSON, split: Callable[[str], list[str]] = words
) -> list[Event]:
    """The ConverseStream events that carry the same message as a Converse response."""
    events: list[Event] = [("messageStart", {"role": "assistant"})]
    for index, block in enumerate(content):
        if "toolUse" in block:
            tool = block["toolUse"]
            start = {"toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}}
            events.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}))
            pieces: list[JSON] = [
                {"toolUse": {"input": p}} for p in split(orjson.dumps(tool["input"]).decode())
            ]
        else:
            pieces = [{"text": p} for p in split(block["text"])]
        events += [("contentBlockDelta", {"contentBlockIndex": index, "delta": p}) for p in pieces]
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    events.append(("messageStop", {"stopReason": stop_reason}))
    events.append(("metadata", {"usage": usage, "metrics": {"latencyMs": 42}}))
    return events


def verify_sigv4(
    method: str, url: str, headers: Any, body: bytes, keys: dict[str, tuple[str, str | None]], region: str
) -> str | None:
    """Why the request's signature is wrong, or None when botocore computes the same one."""
    match = _AUTH.match(headers.get("authorization", ""))
    amz_date = headers.get("x-amz-date", "")
    if match is None:
        return "missing or malformed Authorization header"
    if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date) or match["date"] != amz_date[:8]:
        return "x-amz-date is missing or does not match the credential scope"
    if abs(time.mktime(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")) - time.mktime(time.gmtime())) > 300:
        return "Signature expired"
    if (match["region"], match["service"]) != (region, "bedrock"):
        return f"credential scope {match['region']}/{match['service']} should be {region}/bedrock"
    signed = match["signed"].split(";")
    secret, token = keys.get(match["key"], ("", None))
    if not secret:
        return "UnrecognizedClient"
    if not {"host", "x-amz-date", "content-type"} <= set(signed) or (
        token and "x-amz-security-token" not in signed
    ):
        return f"SignedHeaders {match['signed']} leave out a header that must be signed"
    if token and headers.get("x-amz-security-token") != token:
        return "UnrecognizedClient"
    aws_request = AWSRequest(
        method=method, url=url, data=body, headers={name: headers[name] for name in signed}
    )
    aws_request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(match["key"], secret, token), "bedrock", region)
    expected = signer.signature(
        signer.string_to_sign(aws_request, signer.canonical_request(aws_request)), aws_request
    )
    if not hmac.compare_digest(expected, match["signature"]):
        return "The request signature we calculated does not match the signature you provided."
    return None


def validate_converse(body: JSON) -> str | None:
    """The checks Bedrock makes on a Converse body that a translation could get wrong."""
    unknown = set(body) - CONVERSE_KEYS
    if unknown:
        return f"Unknown parameters: {sorted(unknown)}"
    messages = body.get("messages") or []
    if not messages or messages[0].get("role") != "user":
        return "A conversation must start with a user message."
    has_tool_blocks = False
    for index, message in enumerate(messages):
        if index and message["role"] == messages[index - 1]["role"]:
            return "A conversation must alternate between user and assistant roles."
        if message["role"] not in ("user", "assistant") or not message.get("content"):
            return f"messages.{index}: a role and non-empty content are required"
        for block in message["content"]:
            if len(block) != 1 or not set(block) <= BLOCK_KEYS:
                return f"messages.{index}: invalid content block {sorted(block)}"
            if "text" in block and not block["text"].strip():
                return "The text field in the ContentBlock object is blank."
            if "image" in block and not _valid_image(block["image"]):
                return f"messages.{index}: invalid image block"
            has_tool_blocks |= "toolUse" in block or "toolResult" in block
    if has_tool_blocks and not body.get("toolConfig"):
        return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
    if not set(body.get("inferenceConfig") or {}) <= INFERENCE_KEYS:
        return "invalid inferenceConfig"
    return None


def _valid_image(image: JSON) -> bool:
    try:
        base64.b64decode(image["source"]["bytes"], validate=True)
    except (KeyError, TypeError, binascii.Error):
        return False
    return image.get("format") in ("png", "jpeg", "gif", "webp")


def fake_vector(text: str, size: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % 32] - 128) / 128, 4) for i in range(size)]


@dataclass
class BedrockReceived:
    operation: str
    model: str
    headers: dict[str, str]
    body: JSON
    access_key: str | None


@dataclass
class FakeBedrock:
    """Accepts `keys` (access key → (secret, session token)) or the bearer `api_key`."""

    region: str
    keys: dict[str, tuple[str, str | None]]
    api_key: str
    requests: list[BedrockReceived] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    streams: StreamLog = field(default_factory=StreamLog)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(r"/model/{model:.+}/{operation:[a-z-]+}", self.handle)
        return app

    def reset(self) -> None:
        self.requests.clear()
        self.images.clear()
        self.rejected.clear()
        self.streams.clear()

    def last(self) -> BedrockReceived:
        return self.requests[-1]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        model, operation = request.match_info["model"], request.match_info["operation"]
        refusal = self._authenticate(request, raw)
        if refusal is not None:
            return refusal
        body = orjson.loads(raw)
        key = _AUTH.match(request.headers.get("authorization", ""))
        self.requests.append(
            BedrockReceived(operation, model, dict(request.headers), body, key["key"] if key else None)
        )
        if model.startswith("error-"):
            return named_error(model.removeprefix("error-"))
        if operation == "invoke":
            return self.invoke(model, body)
        problem = validate_converse(body)
        if problem is not None:
            return error("ValidationException", problem)
        content, stop_reason, usage = self.answer(model, body)
        if operation == "converse-stream":
            return await self.stream(request, model, content, stop_reason, usage)
        answer = {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop_reason,
                  "usage": usage, "metrics": {"latencyMs": 42}}  # fmt: skip
        return web.Response(body=orjson.dumps(answer), content_type="application/json", headers=request_id())

    def _authenticate(self, request: web.Request, raw: bytes) -> web.Response | None:
        if request.headers.get("authorization", "").startswith("Bearer "):
            if request.headers["authorization"] == f"Bearer {self.api_key}":
                return None
            return error("UnrecognizedClientException", "Invalid API key", status=403)
        url = f"http://{request.host}{request.raw_path}"
        problem = verify_sigv4(request.method, url, request.headers, raw, self.keys, self.region)
        if problem is None:
            return None
        self.rejected.append(problem)
        if problem == "UnrecognizedClient":
            return error(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
                status=403,
            )
        return error("InvalidSignatureException", problem, status=403)

    def answer(self, model: str, body: JSON) -> tuple[list[JSON], str, JSON]:
        messages = body["messages"]
        texts = [b["text"] for m in messages for b in m["content"] if "text" in b]
        texts += [b["text"] for b in body.get("system") or []]
        prompt_tokens = sum(len(t.split()) for t in texts)
        stop_reason = {"guardrail": "guardrail_intervened", "length": "max_tokens"}.get(model, "end_turn")
        results = [b["toolResult"] for m in messages for b in m["content"] if "toolResult" in b]
        if model == "tools" and body.get("toolConfig") and results:
            content: list[JSON] = [{"text": f"The weather is {results[-1]['content'][0]['text']}."}]
        elif model == "tools" and body.get("toolConfig"):
            tool = {"toolUseId": "tooluse_fake_1", "name": "get_weather", "input": {"city": "Paris"}}
            content, stop_reason = [{"text": "Let me check."}, {"toolUse": tool}], "tool_use"
        elif model == "image":
            images = [b["image"] for m in messages for b in m["content"] if "image" in b]
            self.images += [(i["format"], base64.b64decode(i["source"]["bytes"])) for i in images]
            content = [{"text": f"I see {len(images)} image(s): " + ", ".join(i["format"] for i in images)}]
        elif model == "guardrail":
            content = [{"text": "Sorry, the model cannot answer this question."}]
        else:
            user = (
                [b["text"] for b in messages[-1]["content"] if "text" in b]
                if messages[-1]["role"] == "user"
                else []
            )
            content = [{"text": "echo: " + " ".join(user)}]
        output_tokens = sum(len(str(b.get("text", "")).split()) + 5 * ("toolUse" in b) for b in content)
        usage = {
            "inputTokens": prompt_tokens,
            "outputTokens": output_tokens,
            "totalTokens": prompt_tokens + output_tokens,
        }
        if model == "cache":
            usage.update(
                cacheReadInputTokens=100, cacheWriteInputTokens=20, totalTokens=usage["totalTokens"] + 120
            )
        return content, stop_reason, usage

    async def stream(
        self, request: web.Request, model: str, content: list[JSON], stop_reason: str, usage: JSON
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"content-type": "application/vnd.amazon.eventstream", **request_id()}
        )
        await response.prepare(request)
        if model in MODELS:
            *frames, stop, metadata = [
                event_frame(e, p) for e, p in converse_events(content, stop_reason, usage)
            ]
            filler = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "drip "}})
            return await write_stream(
                request,
                response,
                frames,
                [stop, metadata],
                model=model,
                filler=filler,
                after=1,
                log=self.streams,
            )
        for index, (event, payload) in enumerate(converse_events(content, stop_reason, usage)):
            if index == 2 and model.startswith("midstream-"):
                kind = model.removeprefix("midstream-")
                await response.write(exception_frame(kind, f"fake {kind} during the stream"))
                return response
            if index == 2 and model == "cut":
                return response
            frame = event_frame(event, payload)
            await response.write(frame[: len(frame) // 2])
            await response.write(frame[len(frame) // 2 :])
        await response.write_eof()
        return response

    def invoke(self, model: str, body: JSON) -> web.Response:
        texts: list[Any] = [body.get("inputText")] if "inputText" in body else list(body.get("texts") or [])
        failing = [t for t in texts if isinstance(t, str) and t.startswith("error-")]
        if failing:
            return named_error(failing[0].removeprefix("error-"))
        if model.startswith("amazon.titan-embed"):
            if not set(body) <= {"inputText", "dimensions", "normalize", "embeddingTypes"} or not isinstance(
                body.get("inputText"), str
            ):
                return error("ValidationException", f"Malformed input request: {sorted(body)}")
            if body.get("dimensions", 1024) not in (256, 512, 1024):
                return error("ValidationException", "dimensions must be 256, 512 or 1024")
            vector = fake_vector(body["inputText"], body.get("dimensions", 1024))
            answer = {"embedding": vector, "inputTextTokenCount": len(body["inputText"].split())}
            return web.Response(body=orjson.dumps(answer), content_type="application/json")
        if model.startswith("cohere.embed"):
            batch = body.get("texts")
            if (
                not isinstance(batch, list)
                or not 0 < len(batch) <= 96
                or body.get("input_type")
                not in ("search_document", "search_query", "classification", "clustering")
            ):
                return error("ValidationException", f"Malformed input request: {sorted(body)}")
            answer = {
                "embeddings": [fake_vector(t, 1024) for t in batch],
                "id": str(uuid.uuid4()),
                "response_type": "embeddings_floats",
                "texts": batch,
            }
            tokens = {"x-amzn-bedrock-input-token-count": str(sum(len(t.split()) for t in batch))}
            return web.Response(body=orjson.dumps(answer), content_type="application/json", headers=tokens)
        return error("ValidationException", f"The provided model identifier is invalid: {model}")


def request_id() -> dict[str, str]:
    return {"x-amzn-RequestId": str(uuid.uuid4())}


def named_error(kind: str) -> web.Response:
    if kind == "context":
        return error("ValidationException", "Input is too long for requested model.")
    return error(kind, ERROR_MESSAGES.get(kind, f"fake {kind}"))


def error(kind: str, message: str, status: int | None = None) -> web.Response:
    headers = {
        "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        **request_id(),
    }
    return web.Response(
        status=status or ERROR_STATUS.get(kind, 400),
        body=orjson.dumps({"message": message}),
        content_type="application/json",
        headers=headers,
    )
