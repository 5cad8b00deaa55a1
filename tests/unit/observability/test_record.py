"""The closed error vocabulary, token counts out of a usage, and upstream time as the union
of attempts' intervals."""

from __future__ import annotations

import pytest

from llm_gateway.api.disconnect import ClientDisconnected
from llm_gateway.api.refusals import HostNotAllowed
from llm_gateway.core import errors
from llm_gateway.observability.attempts import UpstreamClock
from llm_gateway.observability.record import ERROR_TYPES, error_type, tokens_of


def test_every_error_has_a_name_from_the_vocabulary() -> None:
    timeout = errors.UpstreamTimeout("slow")
    cases = [
        (None, None),
        (errors.AuthenticationFailed("no"), "authentication_failed"),
        (errors.ModelNotFound("no"), "model_not_found"),
        (errors.BudgetExceeded("no"), "budget_exceeded"),
        (errors.AllDeploymentsFailed(timeout, attempts=3), "upstream_timeout"),
        (errors.NoDeploymentAvailable(timeout, attempts=0), "no_deployment_available"),
        (HostNotAllowed("no"), "caller_error"),  # a subclass elsewhere counts as its base
        (ClientDisconnected("gone"), "client_disconnected"),
        (RuntimeError("bug"), "internal"),
    ]
    for error, name in cases:
        assert error_type(error) == name
        assert name is None or name in ERROR_TYPES


def test_tokens_of_a_usage() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 3},
    }
    tokens = tokens_of(usage)  # type: ignore[arg-type]
    assert (tokens.prompt, tokens.completion, tokens.cached, tokens.cache_write, tokens.reasoning) == (
        10,
        5,
        4,
        2,
        3,
    )
    assert tokens_of(None).prompt == 0


@pytest.mark.parametrize(
    ("attempts", "covered"),
    [
        ([], None),
        ([(1.0, 3.0)], 2.0),
        ([(1.0, 3.0), (4.0, 5.0)], 3.0),  # a retry after a backoff: the wait is not upstream time
        ([(1.0, 4.0), (2.0, 5.0)], 4.0),  # a hedge racing the first attempt counts once
        ([(1.0, 5.0), (2.0, 3.0)], 4.0),
    ],
)
def test_upstream_time_is_the_union_of_attempts(
    attempts: list[tuple[float, float]], covered: float | None
) -> None:
    clock = UpstreamClock()
    for start, end in attempts:
        clock.add(end - start, end)
    assert clock.total() == (None if covered is None else pytest.approx(covered))
