"""What a request may cost before it runs, and what it cost after: the seams governance prices
through.

- `Costing.estimate(call, group)`: the worst case over every deployment the request could
  reach (its group and the group's fallbacks), in USD; None when one of them is unpriced.
- `Costing.cost(ctx)`: the served request's real cost from `ctx.usage` and `ctx.route`;
  None when unpriced or nothing was served (never 0 for "unknown").
- `PromptTokens`: the prompt's token count before the call, for TPM and the estimate.

`PricedCosting` prices through `services/pricing.py` (per-deployment overrides, else the
genai-prices database, cached and cache-write tokens at their own rates); prompt tokens are
counted offline with `services/tokens.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.types import Usage
from llm_gateway.routing.deployments import Group, ModelCatalog
from llm_gateway.services.pricing import PriceBook, PricedDeployment, Rates, estimate, steady_rates
from llm_gateway.services.tokens import count_prompt_tokens

MILLION = Decimal(1_000_000)
PromptTokens = Callable[[Call], int]
Reach = tuple[tuple[PricedDeployment, Rates | None], ...]
MAX_GROUPS = 4096
"""Groups whose reach `PricedCosting` keeps (wildcard models derive groups on demand)."""


class Costing(Protocol):
    def estimate(self, call: Call, group: Group, prompt_tokens: int) -> Decimal | None: ...

    def cost(self, ctx: RequestContext) -> Decimal | None: ...


def max_output_tokens(call: Call, default: int) -> int:
    """The completion tokens a request can produce at most: what it asks for, else `default`."""
    if call.operation in (Operation.EMBEDDINGS, Operation.COUNT_TOKENS, Operation.CHAT_TOKENS):
        return 0
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = call.body.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return default


class PricedCosting:
    """Prices through `services/pricing.py`'s book: each deployment's `pricing` override, else
    the genai-prices database. A reachable deployment that is unpriced makes the estimate
    None (the hook then applies `governance.unpriced`); a cost is None when unpriced."""

    def __init__(self, book: PriceBook, catalog: ModelCatalog, default_max_output_tokens: int = 4096) -> None:
        self._book = book
        self._catalog = catalog
        self._default_max_output = default_max_output_tokens
        self._reach: dict[str, tuple[Group, Reach | None]] = {}

    def estimate(self, call: Call, group: Group, prompt_tokens: int) -> Decimal | None:
        reach = self.reach(group)
        if reach is None:
            return None
        worst = Decimal(0)
        for entry, steady in reach:
            rates = steady if steady is not None else entry.rates(prompt_tokens=prompt_tokens)
            value = estimate(call, prompt_tokens, rates=rates, default_output=self._default_max_output)
            if value is None:
                return None
            worst = max(worst, value)
        return worst

    def reach(self, group: Group) -> Reach | None:
        """Every deployment the group's requests can reach (its own, its fallbacks'), with
        its rates when they are steady (`pricing.steady_rates`); None when one is not in the
        book. Worked out once per group: a budget hold is sized on every governed request."""
        cached = self._reach.get(group.name)
        if cached is not None and cached[0] is group:
            return cached[1]
        reach: Reach | None = self._reach_of(group)
        if len(self._reach) >= MAX_GROUPS:
            self._reach.clear()
        self._reach[group.name] = (group, reach)
        return reach

    def _reach_of(self, group: Group) -> Reach | None:
        found: list[tuple[PricedDeployment, Rates | None]] = []
        for key in self._reachable(group):
            entry = self._book.deployment(key)
            if entry is None:
                return None
            found.append((entry, steady_rates(entry)))
        return tuple(found)

    def _reachable(self, group: Group) -> Iterator[str]:
        yield from (t.key for t in group.targets)
        for kind in (group.fallbacks, group.context_window_fallbacks, group.content_policy_fallbacks):
            for name in kind:
                yield from (t.key for t in self._catalog.group(name).targets)

    def cost(self, ctx: RequestContext) -> Decimal | None:
        if ctx.route is None:
            return None
        return self._book.cost(ctx.route, ctx.usage, at=datetime.now(UTC)).usd


def counted_prompt_tokens(call: Call) -> int:
    """The prompt's tokens counted offline (services/tokens.py), by the public model's name."""
    return count_prompt_tokens(call.operation, call.body, call.model or "")


def tokens_of(usage: Usage) -> tuple[int, int, int, int]:
    """Prompt, completion, cached prompt and reasoning tokens of a `Usage`."""
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return prompt, completion, int(cached or 0), int(reasoning or 0)
