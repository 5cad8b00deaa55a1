"""Routing, as the client sees it: the header that turns retries off, and the response
headers that tell which deployment served, after how many attempts, by fallback or hedge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_gateway.routing.executor import Served

NO_RETRY_HEADER = "x-llm-gateway-no-retry"
_TRUE = frozenset({"1", "true", "yes", "on"})


def retries_allowed(headers: Mapping[str, str]) -> bool:
    """False when the client sent `x-llm-gateway-no-retry: true`: one attempt, no fallback."""
    value = headers.get(NO_RETRY_HEADER)
    return value is None or value.strip().lower() not in _TRUE


def served_headers(served: Served[Any]) -> dict[str, str]:
    target = served.target
    headers = {
        "x-llm-gateway-provider": target.provider.name,
        "x-llm-gateway-model": target.model,
        "x-llm-gateway-deployment": target.key,
        "x-llm-gateway-attempts": str(served.attempts),
    }
    if served.fallback is not None:
        headers["x-llm-gateway-fallback"] = served.fallback
    if served.hedged:
        headers["x-llm-gateway-hedged"] = "true"
    return headers
