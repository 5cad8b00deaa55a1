"""What a request may cost before it runs, and what it cost after: the seams governance prices
through, with stand-ins until the pricing and token-counting modules land.

- `Costing.estimate(call, group)`: the worst case over every deployment the request could
  reach (its group and the group's fallbacks), in USD; None when one of them is unpriced.
- `Costing.cost(ctx)`: the served request's real cost from `ctx.usage` and `ctx.route`;
  None when unpriced or nothing was served (never 0 for "unknown").
- `PromptTokens`: the prompt's token count before the call, for TPM and the estimate.

`DeploymentCosting` prices from each deployment's `input_cost_per_mtok` and
`output_cost_per_mtok`; `services/pricing.py` replaces it (same protocol) with real price
tables, cached-token rates and the like. `estimate_prompt_tokens` is the body's JSON length
divided by 4, a stand-in for `services/tokens.py`'s `count_prompt_tokens`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Protocol

import orjson

from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.types import Usage
from llm_gateway.routing.deployments import Group, ModelCatalog

MILLION = Decimal(1_000_000)
PromptTokens = Callable[[Call], int]


class Costing(Protocol):
    def estimate(self, call: Call, group: Group, prompt_tokens: int) -> Decimal | None: ...

    def cost(self, ctx: RequestContext) -> Decimal | None: ...


def estimate_prompt_tokens(call: Call) -> int:
    """Stand-in: a token per 4 bytes of the body's JSON (replaced by `count_prompt_tokens`)."""
    return math.ceil(len(orjson.dumps(call.body)) / 4)


def max_output_tokens(call: Call, default: int) -> int:
    """The completion tokens a request can produce at most: what it asks for, else `default`."""
    if call.operation in (Operation.EMBEDDINGS, Operation.COUNT_TOKENS):
        return 0
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = call.body.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return default


Prices = tuple[Decimal, Decimal]
"""USD per million input tokens, per million output tokens."""


class DeploymentCosting:
    """Prices from the deployments' own config; a deployment with neither price is unpriced
    (one price alone counts the other as free)."""

    def __init__(
        self, config: GatewayConfig, catalog: ModelCatalog, default_max_output_tokens: int = 4096
    ) -> None:
        self._catalog = catalog
        self._default_max_output = default_max_output_tokens
        self._prices: dict[str, Prices | None] = {}
        for name, model in config.models.items():
            for target, deployment in zip(catalog.group(name).targets, model.deployments, strict=True):
                prices = (deployment.input_cost_per_mtok, deployment.output_cost_per_mtok)
                self._prices[target.key] = (
                    None
                    if all(p is None for p in prices)
                    else (Decimal(str(prices[0] or 0)), Decimal(str(prices[1] or 0)))
                )

    def estimate(self, call: Call, group: Group, prompt_tokens: int) -> Decimal | None:
        output = max_output_tokens(call, self._default_max_output)
        worst = Decimal(0)
        for key in self._reachable(group):
            prices = self._prices.get(key)
            if prices is None:
                return None
            worst = max(worst, (prices[0] * prompt_tokens + prices[1] * output) / MILLION)
        return worst

    def _reachable(self, group: Group) -> Iterator[str]:
        yield from (t.key for t in group.targets)
        for kind in (group.fallbacks, group.context_window_fallbacks, group.content_policy_fallbacks):
            for name in kind:
                yield from (t.key for t in self._catalog.group(name).targets)

    def cost(self, ctx: RequestContext) -> Decimal | None:
        if ctx.route is None or ctx.usage is None:
            return None
        prices = self._prices.get(ctx.route.deployment)
        if prices is None:
            return None
        prompt, completion = tokens_of(ctx.usage)[:2]
        return (prices[0] * prompt + prices[1] * completion) / MILLION


def tokens_of(usage: Usage) -> tuple[int, int, int, int]:
    """Prompt, completion, cached prompt and reasoning tokens of a `Usage`."""
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return prompt, completion, int(cached or 0), int(reasoning or 0)
