"""The gateway's error hierarchy, grouped by fault domain.

Every failure a client can see is one of these, rendered once by the API layer as
OpenAI-shaped JSON: ``{"error": {"message", "type", "code", "param"}}``.

    GatewayError                         500 api_error (the gateway's own fault)
    ├── GovernanceUnavailable            503 the shared limits/budget store is unreachable
    ├── CallerError                      the request is wrong; never retried
    │   ├── InvalidRequest               400 invalid_request_error
    │   ├── NotFound                     404 (unknown model, route)
    │   ├── MethodNotAllowed             405
    │   ├── Conflict                     409 (admin API: a duplicate name, a team still in use)
    │   ├── PayloadTooLarge              413
    │   └── HeadersTooLarge              431
    ├── PolicyError                      the gateway refuses by policy
    │   ├── AuthenticationFailed         401
    │   ├── PermissionDenied             403
    │   ├── LimitExceeded                429 (gateway rate limits, parallel requests)
    │   ├── BudgetExceeded               402 budget_exceeded (a scope's spend would pass its budget)
    │   └── GuardrailBlocked             400 guardrail_blocked (input), 403 (output); names the guardrail
    ├── GuardrailUnavailable             503 a guardrail could not run and fails closed
    └── ProviderError                    an upstream failed; carries `retryable`, `retry_after`
        ├── UpstreamStatusError          upstream 4xx: same status, upstream's message
        │   ├── ContextLengthExceeded    400 code=context_length_exceeded
        │   ├── ContentPolicyViolation   400 code=content_policy_violation
        │   └── UpstreamRateLimited      429, retryable, keeps retry-after
        ├── UpstreamUnavailable          502 upstream 5xx / bad response, retryable
        │   ├── UpstreamOverloaded       503 (e.g. Anthropic 529), retryable
        │   ├── UpstreamMalformed        502 an answer that breaks HTTP, SSE or its own shape
        │   └── UpstreamResponseTooLarge 502 an answer or event over the provider's limit
        ├── UpstreamConnectionError      502 connection refused/reset, retryable
        ├── UpstreamTimeout              504, retryable
        └── AllDeploymentsFailed         a model's every attempt failed: rendered as its
            │                            deciding cause, carrying `attempts` and `causes`
            └── NoDeploymentAvailable    every deployment is cooling down

Provider adapters map their own statuses and bodies into this tree; nothing above
``providers/`` inspects provider error text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    status: ClassVar[int] = 500
    error_type: str = "api_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.param = param
        self.headers = headers or {}

    @property
    def status_code(self) -> int:
        return self.status

    def to_body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class CallerError(GatewayError):
    status = 400
    error_type = "invalid_request_error"


class InvalidRequest(CallerError):
    """Malformed JSON, a missing or mistyped field."""


class NotFound(CallerError):
    status = 404
    default_code = "not_found"


class ModelNotFound(NotFound):
    default_code = "model_not_found"


class MethodNotAllowed(CallerError):
    status = 405
    default_code = "method_not_allowed"


class Conflict(CallerError):
    status = 409
    default_code = "conflict"


class PayloadTooLarge(CallerError):
    status = 413
    default_code = "request_too_large"


class HeadersTooLarge(CallerError):
    status = 431
    default_code = "request_header_fields_too_large"


class PolicyError(GatewayError):
    status = 403
    error_type = "permission_error"
    scope: str | None = None
    """The kind of scope (`key`, `team`, `user`) whose limit or budget refused, when known."""


class AuthenticationFailed(PolicyError):
    status = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(PolicyError):
    status = 403
    error_type = "permission_error"


class LimitExceeded(PolicyError):
    status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class BudgetExceeded(PolicyError):
    """A scope's settled spend, its outstanding holds and this request's worst case would pass
    its budget. The message names the scope and when its period resets."""

    status = 402
    error_type = "budget_exceeded"
    default_code = "budget_exceeded"


class GuardrailBlocked(PolicyError):
    """A guardrail refused the request's input (400) or the model's answer (403); the
    message names the guardrail and what it found, never the text it matched."""

    status = 400
    error_type = "invalid_request_error"
    default_code = "guardrail_blocked"

    def __init__(self, message: str, *, guardrail: str, status: int = 400, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.guardrail = guardrail
        self._status = status
        if status == 403:
            self.error_type = "permission_error"

    @property
    def status_code(self) -> int:
        return self._status


class GuardrailUnavailable(GatewayError):
    """A guardrail could not run (its service is down) and is configured to fail closed
    (`on_error: block`, the default)."""

    status = 503
    default_code = "guardrail_unavailable"

    def __init__(self, message: str, *, guardrail: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.guardrail = guardrail


class GovernanceUnavailable(GatewayError):
    """Limits and budgets cannot be checked (their store is unreachable) and the gateway is
    configured to fail closed (`governance.on_store_error: fail_closed`)."""

    status = 503
    default_code = "governance_unavailable"


class ResponsesUnavailable(GatewayError):
    """The database holding stored Responses API conversations cannot be read."""

    status = 503
    default_code = "responses_store_unavailable"


class ProviderError(GatewayError):
    """An upstream call failed. `retryable` tells routing whether another attempt may help."""

    retryable: ClassVar[bool] = False
    error_type = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, param=param, headers=headers)
        self.provider = provider
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers.setdefault("retry-after", str(max(0, math.ceil(retry_after))))


class UpstreamStatusError(ProviderError):
    """An upstream 4xx, reported with the upstream's own status and message."""

    error_type = "invalid_request_error"

    def __init__(self, message: str, *, status: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self._status = status
        self.error_type = _TYPE_BY_STATUS.get(status, "invalid_request_error")

    @property
    def status_code(self) -> int:
        return self._status


_TYPE_BY_STATUS = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}

# 408 and 409 come back as UpstreamStatusError but are worth another attempt.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class ContextLengthExceeded(UpstreamStatusError):
    default_code = "context_length_exceeded"

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, status=400, **kwargs)


class ContentPolicyViolation(UpstreamStatusError):
    default_code = "content_policy_violation"

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, status=400, **kwargs)


class UpstreamRateLimited(UpstreamStatusError):
    retryable = True
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, status=429, **kwargs)


class UpstreamUnavailable(ProviderError):
    status = 502
    retryable = True
    default_code = "upstream_unavailable"


class UpstreamOverloaded(UpstreamUnavailable):
    status = 503
    error_type = "overloaded_error"
    default_code = "upstream_overloaded"


class UpstreamMalformed(UpstreamUnavailable):
    """The upstream broke the protocol (HTTP framing, SSE, JSON) or sent an answer of the wrong
    shape: its failure, retried elsewhere like a 5xx."""

    default_code = "upstream_malformed_response"


class UpstreamResponseTooLarge(UpstreamUnavailable):
    """An upstream answer, error body or stream event over the provider's size limits."""

    default_code = "upstream_response_too_large"


class UpstreamConnectionError(ProviderError):
    status = 502
    retryable = True
    default_code = "upstream_connection_error"


class UpstreamTimeout(ProviderError):
    status = 504
    retryable = True
    error_type = "timeout_error"
    default_code = "upstream_timeout"


class AllDeploymentsFailed(ProviderError):
    """Routing gave up on a request: every attempt failed, or no deployment could take one.

    The client sees the deciding cause (its status, type, code and message: a bad upstream
    key stays a 401), plus how many attempts were made. The causes themselves are kept
    as they were raised: health tracking stores them and shares them across requests, so
    they are never mutated or copied field by field.
    """

    def __init__(
        self,
        cause: ProviderError,
        *,
        attempts: int,
        causes: Sequence[ProviderError] = (),
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            message or cause.message,
            provider=cause.provider,
            code=cause.code,
            param=cause.param,
            headers={**cause.headers, **(headers or {})},
        )
        self.retry_after = cause.retry_after
        self.error_type = cause.error_type
        self.cause = cause
        self.causes = tuple(causes) or (cause,)
        self.attempts = attempts

    @property
    def status_code(self) -> int:
        return self.cause.status_code


class NoDeploymentAvailable(AllDeploymentsFailed):
    """No deployment of a model could take an attempt (every circuit is open): the model
    counts as failed, so its fallbacks are tried whatever opened the circuits."""


def is_retryable(error: BaseException) -> bool:
    """Whether another attempt (same or other deployment) could succeed."""
    if isinstance(error, AllDeploymentsFailed):
        return is_retryable(error.cause)
    if isinstance(error, UpstreamStatusError):
        return error.retryable or error.status_code in RETRYABLE_STATUSES
    return isinstance(error, ProviderError) and error.retryable
