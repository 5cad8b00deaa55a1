"""Bedrock's error types and statuses → the gateway's error tree."""

from __future__ import annotations

import orjson
import pytest
from multidict import CIMultiDict

from llm_gateway.core.errors import (
    ContextLengthExceeded,
    ProviderError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamStatusError,
    UpstreamUnavailable,
    is_retryable,
)
from llm_gateway.providers.bedrock.errors import bedrock_error, http_error


@pytest.mark.parametrize(
    ("error_type", "status", "message", "expected", "client_status", "retryable"),
    [
        ("ValidationException", 400, "messages.0: blank", UpstreamStatusError, 400, False),
        ("ValidationException", 400, "toolUseId is too long", UpstreamStatusError, 400, False),
        (
            "ValidationException",
            400,
            "Input is too long for requested model.",
            ContextLengthExceeded,
            400,
            False,
        ),
        (
            "ValidationException",
            400,
            "prompt is too long: 212000 tokens > 200000 maximum",
            ContextLengthExceeded,
            400,
            False,
        ),
        (
            "ValidationException",
            400,
            "The model's context window was exceeded",
            ContextLengthExceeded,
            400,
            False,
        ),
        ("AccessDeniedException", 403, "no access", UpstreamStatusError, 403, False),
        ("ResourceNotFoundException", 404, "no model", UpstreamStatusError, 404, False),
        ("ModelTimeoutException", 408, "slow", UpstreamStatusError, 408, True),
        ("ThrottlingException", 429, "Too many requests", UpstreamRateLimited, 429, True),
        ("ServiceQuotaExceededException", 400, "quota", UpstreamRateLimited, 429, True),
        ("ModelNotReadyException", 429, "warming up", UpstreamOverloaded, 503, True),
        ("ServiceUnavailableException", 503, "busy", UpstreamOverloaded, 503, True),
        ("InternalServerException", 500, "oops", UpstreamUnavailable, 502, True),
        ("ModelErrorException", 424, "model failed", UpstreamUnavailable, 502, True),
        ("UnrecognizedClientException", 403, "bad token", UpstreamStatusError, 403, False),
        ("", 429, "?", UpstreamRateLimited, 429, True),
        ("", 502, "bad gateway", UpstreamUnavailable, 502, True),
    ],
)
def test_error_mapping(
    error_type: str,
    status: int,
    message: str,
    expected: type[ProviderError],
    client_status: int,
    retryable: bool,
) -> None:
    error = bedrock_error(error_type, status, message, provider="b")
    assert type(error) is expected
    assert error.status_code == client_status
    assert is_retryable(error) is retryable
    assert message in error.message
    assert error.provider == "b"


def test_stream_exception_names_are_lower_camel_case() -> None:
    assert isinstance(bedrock_error("throttlingException", 429, "x", provider="b"), UpstreamRateLimited)


def test_http_error_reads_the_header_with_its_suffix_and_the_message() -> None:
    headers = CIMultiDict(
        {"X-Amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    )
    error = http_error(429, orjson.dumps({"message": "Too many requests"}), headers, provider="b")
    assert isinstance(error, UpstreamRateLimited) and error.message == "Too many requests"


def test_http_error_falls_back_to_the_body_type_and_capital_message() -> None:
    body = orjson.dumps(
        {"__type": "com.amazon.coral.validate#ValidationException", "Message": "Input is too long"}
    )
    assert isinstance(http_error(400, body, CIMultiDict(), provider="b"), ContextLengthExceeded)


def test_http_error_keeps_retry_after_and_survives_html() -> None:
    error = http_error(503, b"<html>down</html>", CIMultiDict({"retry-after": "4"}), provider="b")
    assert isinstance(error, UpstreamUnavailable)
    assert error.headers["retry-after"] == "4"
    assert "<html>down</html>" in error.message
