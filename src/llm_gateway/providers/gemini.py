"""Google AI Studio (Generative Language API v1beta): chat, streaming and embeddings.

The translation lives in pure modules: `gemini_request` (OpenAI → Gemini),
`gemini_response` (Gemini → OpenAI) and `gemini_stream` (the SSE state machine). This
module maps Google's errors, translates embeddings, and does the I/O.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from pydantic import Field, SecretStr

from llm_gateway.core.config import ProviderSettings, SecretHeaders, SecretUrl
from llm_gateway.core.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    ProviderError,
    UpstreamConnectionError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from llm_gateway.core.types import JSON, ChatChunk, ChatCompletion, ChatRequest
from llm_gateway.providers.base import Provider
from llm_gateway.providers.gemini_request import to_gemini
from llm_gateway.providers.gemini_response import from_gemini
from llm_gateway.providers.gemini_stream import GeminiStream
from llm_gateway.providers.transport import (
    error_for_status,
    parse_json_body,
    redact,
    retry_after_seconds,
    sse_events,
)

# Google words a prompt over the model's window as "The input token count (N) exceeds the
# maximum number of tokens allowed (M)."
TOKEN_LIMIT_PHRASES = ("exceeds the maximum number of tokens", "input token count")
EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


class GeminiSettings(ProviderSettings):
    base_url: SecretUrl = SecretUrl("https://generativelanguage.googleapis.com/v1beta")
    api_key: SecretStr
    headers: SecretHeaders = Field(default_factory=SecretHeaders)


def _error_object(body: bytes) -> JSON | None:
    """Google's `{"error": {...}}`, also when wrapped in a list as some endpoints send it."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else None


def _details(error: JSON, kind: str) -> list[JSON]:
    details = error.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)]


def retry_delay(error: JSON) -> float | None:
    """Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "34s"`)."""
    for info in _details(error, "google.rpc.RetryInfo"):
        delay = info.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def gemini_error(
    status: int, body: bytes, headers: Mapping[str, str], *, provider: str, secrets: tuple[str | None, ...]
) -> ProviderError:
    """Map a Google error response (`{"error": {"code", "message", "status", "details"}}`)."""
    error = _error_object(body) or {}
    message = str(
        error.get("message") or (body[:500].decode("utf-8", "replace") if body else f"HTTP {status}")
    )
    message = redact(message, secrets)
    google_status = str(error.get("status") or "")
    reasons = {str(d.get("reason")) for d in _details(error, "google.rpc.ErrorInfo")}
    delay = retry_delay(error)
    retry_after = delay if delay is not None else retry_after_seconds(headers)
    if status == 400 and any(phrase in message for phrase in TOKEN_LIMIT_PHRASES):
        return ContextLengthExceeded(message, provider=provider)
    if "API_KEY_INVALID" in reasons or google_status == "UNAUTHENTICATED":
        # Google answers a bad key with 400 INVALID_ARGUMENT; it is an authentication failure.
        return UpstreamStatusError(message, status=401, provider=provider, code="invalid_api_key")
    if status == 429 or google_status == "RESOURCE_EXHAUSTED":
        return UpstreamRateLimited(message, provider=provider, retry_after=retry_after)
    if status == 503 or google_status == "UNAVAILABLE":
        return UpstreamOverloaded(
            f"upstream provider {provider!r} is overloaded: {message}",
            provider=provider,
            retry_after=retry_after,
        )
    if status == 504 or google_status == "DEADLINE_EXCEEDED":
        return UpstreamTimeout(f"upstream provider {provider!r} timed out: {message}", provider=provider)
    code = google_status.lower() or None
    return error_for_status(status, message, provider=provider, code=code, retry_after=retry_after)


def model_path(model: str) -> str:
    """`gemini-2.5-flash` → `models/gemini-2.5-flash`; `models/…` and `tunedModels/…` stay as they are."""
    return model if "/" in model else f"models/{model}"


def embedding_texts(request: JSON) -> list[str]:
    """The texts of an embeddings request; Gemini embeds text only, so token arrays are a 400."""
    for name, value in request.items():
        if name not in EMBEDDING_FIELDS and value is not None:
            raise InvalidRequest(f"'{name}' is not supported for Gemini embeddings", param=name)
    raw = request.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise InvalidRequest(
            "'input' must be a string or an array of strings for Gemini models", param="input"
        )
    return texts


def to_embed_request(request: JSON, model: str) -> tuple[str, JSON]:
    """(method, body): `embedContent` for one string, `batchEmbedContents` for a list."""
    texts = embedding_texts(request)
    dimensions = request.get("dimensions")
    if isinstance(request.get("input"), str):
        single: JSON = {"content": {"parts": [{"text": texts[0]}]}}
        if dimensions is not None:
            single["outputDimensionality"] = dimensions
        return "embedContent", single
    requests = []
    for text in texts:
        item: JSON = {"model": model_path(model), "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            item["outputDimensionality"] = dimensions
        requests.append(item)
    return "batchEmbedContents", {"requests": requests}


def from_embed_response(response: Any, texts: list[str], model: str, provider: str) -> JSON:
    """Gemini embeddings → the OpenAI list. Google reports no token count for AI Studio
    embeddings; when `usageMetadata` is absent, usage is estimated at 4 characters a token."""
    if isinstance(response, dict) and isinstance(response.get("embedding"), dict):
        vectors = [response["embedding"].get("values")]
    elif isinstance(response, dict) and isinstance(response.get("embeddings"), list):
        vectors = [e.get("values") if isinstance(e, dict) else None for e in response["embeddings"]]
    else:
        vectors = []
    if len(vectors) != len(texts) or not all(isinstance(v, list) for v in vectors):
        raise UpstreamUnavailable(
            f"upstream provider {provider!r} returned malformed embeddings", provider=provider
        )
    metadata = response.get("usageMetadata")
    tokens = metadata.get("promptTokenCount") if isinstance(metadata, dict) else None
    if not isinstance(tokens, int):
        tokens = sum(math.ceil(len(text) / 4) for text in texts)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _max_calls(request: ChatRequest) -> int | None:
    """With `parallel_tool_calls: false` only the first call of an answer is kept."""
    return 1 if request.get("parallel_tool_calls") is False else None


class GeminiProvider(Provider):
    settings_model = GeminiSettings
    supports_embeddings = True
    settings: GeminiSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._base = self.settings.base_url.get_secret_value().rstrip("/")
        self._api_key = self.settings.api_key.get_secret_value()
        self._headers = {
            "content-type": "application/json",
            **self.settings.headers,
            "x-goog-api-key": self._api_key,
        }

    def url(self, model: str, method: str) -> str:
        return f"{self._base}/{model_path(model)}:{method}"

    def _error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return gemini_error(status, body, headers, provider=self.name, secrets=(self._api_key,))

    async def _post(self, url: str, payload: JSON, timeout: float | None) -> Any:
        async with self.http.request(
            "POST", url, body=orjson.dumps(payload), headers=self._headers, timeout=timeout
        ) as response:
            body = await response.read()
            if response.status >= 400:
                raise self._error(response.status, body, response.headers)
        return parse_json_body(body, self.name)

    async def complete(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> ChatCompletion:
        answer = await self._post(self.url(model, "generateContent"), to_gemini(request), timeout)
        if not isinstance(answer, dict):
            raise UpstreamUnavailable(
                f"upstream provider {self.name!r} returned a malformed response", provider=self.name
            )
        return from_gemini(answer, model, max_calls=_max_calls(request))

    async def stream(
        self, request: ChatRequest, model: str, *, timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        payload = orjson.dumps(to_gemini(request))
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        state = GeminiStream(model, include_usage=include_usage, max_calls=_max_calls(request))
        url = self.url(model, "streamGenerateContent") + "?alt=sse"
        async with self.http.request(
            "POST", url, body=payload, headers=self._headers, timeout=timeout, stream=True
        ) as response:
            if response.status >= 400:
                raise self._error(response.status, await response.read(), response.headers)
            async for _event, data in sse_events(response):
                event = parse_json_body(data, self.name)
                if not isinstance(event, dict):
                    raise UpstreamUnavailable(
                        f"upstream provider {self.name!r} sent a malformed event", provider=self.name
                    )
                if isinstance(event.get("error"), dict):
                    code = event["error"].get("code")
                    raise self._error(code if isinstance(code, int) else 500, data, {})
                for chunk in state.feed(event):
                    yield chunk
        if not state.finished:
            raise UpstreamConnectionError(
                f"upstream provider {self.name!r} ended the stream early", provider=self.name
            )
        for chunk in state.finish():
            yield chunk

    async def embed(
        self, request: dict[str, Any], model: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        texts = embedding_texts(request)
        method, payload = to_embed_request(request, model)
        answer = await self._post(self.url(model, method), payload, timeout)
        return from_embed_response(answer, texts, model, self.name)
