"""Bedrock's errors, from an HTTP response or an event-stream exception, as gateway errors.

Bedrock names the error in the `x-amzn-ErrorType` header (`ThrottlingException:http://...`)
or, inside a stream, in the `:exception-type` header (`throttlingException`); the body is
`{"message": ...}`. Statuses follow botocore's service model for bedrock-runtime.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import orjson

from llm_gateway.core.errors import (
    ContextLengthExceeded,
    ProviderError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamStatusError,
    UpstreamUnavailable,
)
from llm_gateway.providers.transport import body_text, error_for_status, retry_after_seconds

_CONTEXT = re.compile(r"(input|prompt) is too long|too many (input )?tokens|context (length|window)", re.I)
"""How Bedrock's models word an over-long prompt inside a ValidationException."""


def bedrock_error(
    error_type: str, status: int, message: str, *, provider: str, retry_after: float | None = None
) -> ProviderError:
    """Map a Bedrock error (HTTP `x-amzn-ErrorType` or an event stream's `:exception-type`)."""
    kind = error_type.split(":", 1)[0].rsplit("#", 1)[-1]
    kind = kind[:1].upper() + kind[1:]
    if kind == "ValidationException":
        if _CONTEXT.search(message):
            return ContextLengthExceeded(message, provider=provider)
        return UpstreamStatusError(message, status=400, provider=provider, code="validation_error")
    if kind in ("ThrottlingException", "ServiceQuotaExceededException"):
        return UpstreamRateLimited(message, provider=provider, retry_after=retry_after)
    if kind in ("ServiceUnavailableException", "ModelNotReadyException"):
        return UpstreamOverloaded(
            f"upstream provider {provider!r} is unavailable: {message}",
            provider=provider,
            retry_after=retry_after,
        )
    if kind in ("InternalServerException", "ModelErrorException", "ModelStreamErrorException"):
        return UpstreamUnavailable(
            f"upstream provider {provider!r} failed ({kind}): {message}", provider=provider
        )
    if kind == "ModelTimeoutException":
        return UpstreamStatusError(message, status=408, provider=provider, code="model_timeout")
    return error_for_status(status, message, provider=provider, retry_after=retry_after)


def http_error(
    status: int, body: bytes, headers: Mapping[str, str], *, provider: str, secrets: Iterable[str | None] = ()
) -> ProviderError:
    """The gateway error for a Bedrock HTTP error response."""
    error_type = headers.get("x-amzn-errortype", "")
    message = error_message(body, secrets) or f"HTTP {status}"
    if not error_type:
        try:
            error_type = str(orjson.loads(body).get("__type") or "")
        except (orjson.JSONDecodeError, AttributeError):
            error_type = ""
    return bedrock_error(
        error_type, status, message, provider=provider, retry_after=retry_after_seconds(headers)
    )


def error_message(body: bytes, secrets: Iterable[str | None] = ()) -> str:
    """The message of an error body; a non-JSON one is redacted before it is cut."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body_text(body, secrets)
    if isinstance(parsed, dict):
        return str(parsed.get("message") or parsed.get("Message") or "")
    return ""
