"""Google's error responses (`{"error": {"code", "message", "status", "details"}}`), mapped into
the gateway's error tree; the same body arrives as a stream event when a stream fails."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import orjson

from llm_gateway.core.errors import (
    ContextLengthExceeded,
    ProviderError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamStatusError,
    UpstreamTimeout,
)
from llm_gateway.core.types import JSON
from llm_gateway.providers.transport import body_text, error_for_status, redact, retry_after_seconds

# Google words a prompt over the model's window as "The input token count (N) exceeds the
# maximum number of tokens allowed (M)."
TOKEN_LIMIT_PHRASES = ("exceeds the maximum number of tokens", "input token count")


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
    status: int, body: bytes, headers: Mapping[str, str], *, provider: str, secrets: Iterable[str | None]
) -> ProviderError:
    """Map a Google error response (`{"error": {"code", "message", "status", "details"}}`)."""
    error = _error_object(body) or {}
    message = str(error.get("message") or (body_text(body, secrets) if body else "") or f"HTTP {status}")
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
