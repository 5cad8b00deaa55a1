"""The error hierarchy: OpenAI-shaped bodies, statuses by fault domain, retryability, retry-after."""

from __future__ import annotations

import pytest

from llm_gateway.core import errors
from llm_gateway.core.errors import (
    AuthenticationFailed,
    CallerError,
    ContentPolicyViolation,
    ContextLengthExceeded,
    GatewayError,
    HeadersTooLarge,
    InvalidRequest,
    LimitExceeded,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    PolicyError,
    ProviderError,
    UpstreamConnectionError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamStatusError,
    UpstreamTimeout,
    UpstreamUnavailable,
    is_retryable,
)


@pytest.mark.parametrize(
    ("error", "status", "error_type", "code", "domain"),
    [
        (GatewayError("x"), 500, "api_error", None, GatewayError),
        (InvalidRequest("x"), 400, "invalid_request_error", None, CallerError),
        (NotFound("x"), 404, "invalid_request_error", "not_found", CallerError),
        (ModelNotFound("x"), 404, "invalid_request_error", "model_not_found", CallerError),
        (PayloadTooLarge("x"), 413, "invalid_request_error", "request_too_large", CallerError),
        (HeadersTooLarge("x"), 431, "invalid_request_error", "request_header_fields_too_large", CallerError),
        (AuthenticationFailed("x"), 401, "authentication_error", "invalid_api_key", PolicyError),
        (PermissionDenied("x"), 403, "permission_error", None, PolicyError),
        (LimitExceeded("x"), 429, "rate_limit_error", "rate_limit_exceeded", PolicyError),
        (UpstreamRateLimited("x"), 429, "rate_limit_error", "rate_limit_exceeded", ProviderError),
        (ContextLengthExceeded("x"), 400, "invalid_request_error", "context_length_exceeded", ProviderError),
        (
            ContentPolicyViolation("x"),
            400,
            "invalid_request_error",
            "content_policy_violation",
            ProviderError,
        ),
        (UpstreamUnavailable("x"), 502, "upstream_error", "upstream_unavailable", ProviderError),
        (UpstreamOverloaded("x"), 503, "overloaded_error", "upstream_overloaded", ProviderError),
        (UpstreamConnectionError("x"), 502, "upstream_error", "upstream_connection_error", ProviderError),
        (UpstreamTimeout("x"), 504, "timeout_error", "upstream_timeout", ProviderError),
    ],
)
def test_status_type_and_code_by_class(
    error: GatewayError, status: int, error_type: str, code: str | None, domain: type[GatewayError]
) -> None:
    assert isinstance(error, domain)
    assert error.status_code == status
    assert error.to_body() == {"error": {"message": "x", "type": error_type, "param": None, "code": code}}


def test_to_body_carries_message_code_and_param() -> None:
    error = InvalidRequest(
        "'messages' is a required property", param="messages", code="missing_required_parameter"
    )
    assert error.to_body() == {
        "error": {
            "message": "'messages' is a required property",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "missing_required_parameter",
        }
    }
    assert str(error) == error.message


def test_an_explicit_code_beats_the_default() -> None:
    assert ModelNotFound("x", code="custom").to_body()["error"]["code"] == "custom"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (408, "timeout_error"),
        (409, "conflict_error"),
        (422, "invalid_request_error"),
        (418, "invalid_request_error"),
    ],
)
def test_upstream_status_errors_keep_the_upstream_status(status: int, error_type: str) -> None:
    error = UpstreamStatusError("upstream says no", status=status, provider="p", code="c", param="x")
    assert error.status_code == status
    assert error.provider == "p"
    assert error.to_body()["error"] == {
        "message": "upstream says no",
        "type": error_type,
        "param": "x",
        "code": "c",
    }


def test_the_type_of_one_upstream_error_does_not_leak_into_another() -> None:
    UpstreamStatusError("a", status=401)
    assert UpstreamStatusError("b", status=400).error_type == "invalid_request_error"
    assert UpstreamStatusError.error_type == "invalid_request_error"


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (UpstreamRateLimited("x"), True),
        (UpstreamUnavailable("x"), True),
        (UpstreamOverloaded("x"), True),
        (UpstreamConnectionError("x"), True),
        (UpstreamTimeout("x"), True),
        (UpstreamStatusError("x", status=408), True),
        (UpstreamStatusError("x", status=409), True),
        (UpstreamStatusError("x", status=400), False),
        (UpstreamStatusError("x", status=401), False),
        (UpstreamStatusError("x", status=404), False),
        (ContextLengthExceeded("x"), False),
        (ContentPolicyViolation("x"), False),
        (ProviderError("x"), False),
        (InvalidRequest("x"), False),
        (LimitExceeded("x"), False),  # our own limit: another deployment will not lift it
        (GatewayError("x"), False),
        (ValueError("x"), False),
        (TimeoutError(), False),
    ],
)
def test_is_retryable(error: BaseException, retryable: bool) -> None:
    assert is_retryable(error) is retryable


@pytest.mark.parametrize(
    ("seconds", "header"), [(7, "7"), (1.4, "2"), (0.5, "1"), (1.6, "2"), (0, "0"), (-3, "0")]
)
def test_retry_after_becomes_a_header(seconds: float, header: str) -> None:
    error = UpstreamRateLimited("slow down", provider="p", retry_after=seconds)
    assert error.retry_after == seconds
    assert error.headers == {"retry-after": header}


def test_no_retry_after_no_header() -> None:
    assert UpstreamRateLimited("x").headers == {}
    assert UpstreamRateLimited("x").retry_after is None


def test_an_explicit_retry_after_header_is_kept() -> None:
    error = UpstreamUnavailable("x", retry_after=5, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert error.headers["retry-after"] == "Wed, 21 Oct 2015 07:28:00 GMT"


def test_headers_are_not_shared_between_instances() -> None:
    UpstreamRateLimited("a", retry_after=3)
    assert GatewayError("b").headers == {}
    assert UpstreamRateLimited("c").headers == {}


def test_every_public_error_is_a_gateway_error() -> None:
    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert len(classes) >= 17
    for cls in classes:
        assert issubclass(cls, GatewayError), cls
        assert cls.__module__ == errors.__name__
