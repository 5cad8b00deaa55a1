"""Which other models to try, in order, once a model group has failed a request.

- a prompt too long for the model (`context_length_exceeded`): `context_window_fallbacks`,
  straight away, since retrying the same model cannot help;
- a content-policy rejection: `content_policy_fallbacks`;
- an exhausted group (retryable failures, or no deployment available because every
  circuit is open, whatever opened them, a refused key included): `fallbacks`,
  or the request's own `fallbacks` list when the client sent one (it replaces the
  configured list for that request);
- anything else (a bad request, refused credentials): none; the error is the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from llm_gateway.core.errors import (
    ContentPolicyViolation,
    ContextLengthExceeded,
    NoDeploymentAvailable,
    is_retryable,
)
from llm_gateway.routing.deployments import Group


def fallback_chain(group: Group, error: BaseException, requested: Sequence[str] | None) -> tuple[str, ...]:
    if isinstance(error, ContextLengthExceeded):
        chain: Sequence[str] = group.context_window_fallbacks
    elif isinstance(error, ContentPolicyViolation):
        chain = group.content_policy_fallbacks
    elif is_retryable(error) or isinstance(error, NoDeploymentAvailable):
        chain = group.fallbacks if requested is None else requested
    else:
        return ()
    return tuple(dict.fromkeys(name for name in chain if name != group.name))


def continues(error: BaseException) -> bool:
    """Whether a fallback model's failure moves on to the next fallback (or ends the chain)."""
    return is_retryable(error) or isinstance(
        error, ContextLengthExceeded | ContentPolicyViolation | NoDeploymentAvailable
    )
