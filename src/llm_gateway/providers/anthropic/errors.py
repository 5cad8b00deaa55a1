"""Anthropic error responses and `error` stream events, mapped into the gateway's error tree.

Anthropic answers errors as ``{"type": "error", "error": {"type": ..., "message": ...}}``
with these statuses: 400 invalid_request_error, 401 authentication_error, 402 billing_error,
403 permission_error, 404 not_found_error, 413 request_too_large, 429 rate_limit_error,
500 api_error, 504 timeout_error, 529 overloaded_error. The same body arrives as an SSE
`error` event when a stream fails after its 200. This module is the only place that reads
Anthropic error text (for the "prompt is too long" family of context-length errors).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from llm_gateway.core.errors import (
    ContextLengthExceeded,
    ProviderError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from llm_gateway.providers.transport import body_text, error_for_status, redact, retry_after_seconds

# How the API words a request whose prompt (plus max_tokens) does not fit the context window.
CONTEXT_PHRASES = ("prompt is too long", "exceed context limit", "context window")

# The status each error type comes with, for `error` events that carry only the type.
STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def error_fields(body: bytes | Any, secrets: Iterable[str | None] = ()) -> tuple[str | None, str | None]:
    """The (type, message) of an Anthropic error body, given raw bytes or a parsed object; a
    non-JSON body's text is redacted before it is cut."""
    if isinstance(body, bytes | bytearray):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None, body_text(bytes(body), secrets) or None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    kind = error.get("type")
    message = error.get("message")
    return (kind if isinstance(kind, str) else None), (str(message) if message is not None else None)


def anthropic_error(
    status: int,
    body: bytes | Any,
    headers: Mapping[str, str] | None = None,
    *,
    provider: str,
    secrets: Iterable[str | None] = (),
) -> ProviderError:
    """Map an Anthropic HTTP error (status, body, headers) to a gateway ProviderError."""
    kind, message = error_fields(body, secrets)
    text = redact(message or f"HTTP {status}", secrets)
    retry_after = retry_after_seconds(headers or {})
    if status == 400 and any(phrase in text.lower() for phrase in CONTEXT_PHRASES):
        return ContextLengthExceeded(text, provider=provider)
    if status == 529 or kind == "overloaded_error":
        return UpstreamOverloaded(
            f"upstream provider {provider!r} is overloaded: {text}",
            provider=provider,
            retry_after=retry_after,
        )
    if status == 504 or kind == "timeout_error":
        return UpstreamTimeout(f"upstream provider {provider!r} timed out: {text}", provider=provider)
    if status == 429 or kind == "rate_limit_error":
        # The gateway-wide code, as for every provider; the Anthropic front door still
        # renders its own `rate_limit_error` type from the status.
        return UpstreamRateLimited(text, provider=provider, retry_after=retry_after)
    return error_for_status(status, text, provider=provider, code=kind, retry_after=retry_after)


def stream_error(data: Any, *, provider: str, secrets: Iterable[str | None] = ()) -> ProviderError:
    """An `error` event received after the stream's 200: mapped by its error type.

    Whatever the type, the upstream failed mid-answer, so a caller error (400) keeps its
    status but anything else becomes a retryable upstream failure.
    """
    kind, message = error_fields(data, secrets)
    text = redact(message or "stream failed", secrets)
    if kind == "overloaded_error":
        return UpstreamOverloaded(f"upstream provider {provider!r} is overloaded: {text}", provider=provider)
    if kind == "rate_limit_error":
        return UpstreamRateLimited(text, provider=provider)
    status = STATUS_BY_TYPE.get(kind or "", 500)
    if status >= 500:
        return UpstreamUnavailable(
            f"upstream provider {provider!r} failed mid-stream ({kind or 'error'}): {text}", provider=provider
        )
    return anthropic_error(status, data, provider=provider, secrets=secrets)
