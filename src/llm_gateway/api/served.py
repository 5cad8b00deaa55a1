"""Response headers that tell the client which deployment served it."""

from __future__ import annotations

from typing import Any

from llm_gateway.routing.executor import Served


def served_headers(served: Served[Any]) -> dict[str, str]:
    target = served.target
    return {
        "x-llm-gateway-provider": target.provider.name,
        "x-llm-gateway-model": target.model,
        "x-llm-gateway-deployment": target.key,
        "x-llm-gateway-attempts": str(served.attempts),
    }
