"""What a call costs in US dollars: its usage at the serving deployment's prices.

Prices come from a deployment's own `pricing:` block where given, and otherwise from the
`genai-prices` database bundled in its wheel (current and historic prices, cache rates).
The database is read offline: nothing here starts its `UpdatePrices` fetcher, and only
that fetcher touches the network. Everything is `Decimal`; a cost that cannot be known is
`usd=None` (**unpriced**), never zero.

Each token is charged once, at its own rate. In `Usage`, `prompt_tokens` counts every
prompt token: the cache reads (`prompt_tokens_details.cached_tokens`) and cache writes
(`prompt_tokens_details.cache_creation_tokens`, from the Anthropic and Bedrock mappings)
are part of it, so fresh input is what remains. `completion_tokens` includes reasoning
tokens, all at the output rate. See docs/pricing.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from llm_gateway.core.config import Deployment, GatewayConfig, Pricing, ProviderSettings
from llm_gateway.core.context import Call, Operation, Route
from llm_gateway.core.types import Usage
from llm_gateway.routing.deployments import deployment_key

if TYPE_CHECKING:
    from genai_prices.types import ModelPrice

MTOK = Decimal(1_000_000)
PROVIDER_IDS: dict[str, str | None] = {
    "openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "gemini": "google",
    "bedrock": "aws",
    "mock": None,
}
"""Provider `type` → genai-prices provider id; None: never in the database (override only)."""
OPENAI_BASE_URL = "https://api.openai.com"
Part = Literal["input", "cache_read", "cache_write", "output"]
Source = Literal["config", "genai-prices", "config+genai-prices"]


@dataclass(slots=True)  # not frozen: one or more a request, at half a frozen __init__'s cost
class Tokens:
    """A usage split into parts that do not overlap: each token is in exactly one."""

    input: int = 0
    """Fresh prompt tokens: neither read from nor written to a prompt cache."""
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    """Completion tokens, reasoning included."""

    @property
    def prompt(self) -> int:
        return self.input + self.cache_read + self.cache_write


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens of each part for one deployment (None: not known), and where
    they came from. A cache rate that is not known is the input rate (see `rate`)."""

    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    source: Source = "config"
    model_id: str | None = None
    """The price database's model id, when the database gave any rate."""
    max_output: int | None = None
    """The model's largest answer in tokens, when configured (`pricing.max_output_tokens`)."""

    def rate(self, part: Part) -> Decimal | None:
        value: Decimal | None = getattr(self, part)
        if value is None and part in ("cache_read", "cache_write"):
            return self.input
        return value


@dataclass(slots=True)  # not frozen: one or more a request, at half a frozen __init__'s cost
class Cost:
    """What one call cost. `usd` is None when it is **unpriced**: a part with tokens has no
    known rate (an unknown model, the mock provider without an override)."""

    usd: Decimal | None
    tokens: Tokens
    parts: dict[Part, Decimal] = field(default_factory=dict)
    """USD per part that had tokens and a rate."""
    source: Source | None = None
    """Where the rates came from; None when no rate was found at all."""
    model_id: str | None = None


def split_usage(usage: Usage | None) -> Tokens:
    """The non-overlapping parts of `usage`. Cached and cache-write counts larger than the
    prompt (a confused upstream) are clipped so no token is counted twice."""
    if not usage:
        return Tokens()
    prompt = int(usage.get("prompt_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    read = min(int(details.get("cached_tokens") or 0), prompt)
    written = min(int(details.get("cache_creation_tokens") or 0), prompt - read)
    return Tokens(
        input=prompt - read - written,
        cache_read=read,
        cache_write=written,
        output=int(usage.get("completion_tokens") or 0),
    )


@functools.lru_cache(maxsize=4096)
def database_model(provider_type: str, upstream_model: str, *, base_url: str | None = None) -> Any | None:
    """The genai-prices `ModelInfo` for a deployment, or None when it is not in the database.

    Remembered per deployment (the database is the bundled snapshot, fixed for the process's
    life): the lookup walks the providers' model lists, and every governed request prices its
    deployment twice (the worst case before, the cost after). Prices at a given time are still
    read from the `ModelInfo` on each call, so historic prices stay exact.

    An `openai`-type provider with its own `base_url` is looked up by that URL (Groq,
    Together, DeepSeek, ... are in the database); a URL the database does not know (a
    self-hosted server) is not OpenAI's bill, so it is not priced as OpenAI.
    """
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    provider_id = PROVIDER_IDS.get(provider_type)
    model_ref = database_model_ref(provider_type, upstream_model)
    try:
        if provider_type == "openai" and base_url and not base_url.startswith(OPENAI_BASE_URL):
            provider = snapshot.find_provider(None, None, base_url)
            return provider.find_model(model_ref.lower(), all_providers=snapshot.providers)
        if provider_id is None:
            return None
        return snapshot.find_provider_model(model_ref, None, provider_id, None)[1]
    except LookupError:
        return None


def database_model_ref(provider_type: str, upstream_model: str) -> str:
    """The model id as the database names it: Gemini's `models/` prefix and a Bedrock
    inference-profile ARN's path are dropped (`arn:...:inference-profile/us.anthropic...`)."""
    if provider_type == "gemini":
        return upstream_model.removeprefix("models/")
    if provider_type == "bedrock" and upstream_model.startswith("arn:"):
        return upstream_model.rpartition("/")[2]
    return upstream_model


def rates(
    provider_type: str,
    upstream_model: str,
    *,
    override: Pricing | None = None,
    at: datetime | None = None,
    base_url: str | None = None,
    prompt_tokens: int = 0,
) -> Rates:
    """The deployment's rates at `at` (default: now). `prompt_tokens` picks the tier of
    tiered prices (Gemini's long-context rates apply above a prompt size)."""
    when = at or datetime.now(tz=UTC)
    model = database_model(provider_type, upstream_model, base_url=base_url)
    found = Rates(source="genai-prices")
    if model is not None:
        prices = model.get_prices(when)
        found = Rates(
            input=_rate(prices, "input_mtok", prompt_tokens),
            output=_rate(prices, "output_mtok", prompt_tokens),
            cache_read=_rate(prices, "cache_read_mtok", prompt_tokens),
            cache_write=_rate(prices, "cache_write_mtok", prompt_tokens),
            source="genai-prices",
            model_id=str(model.id),
        )
    if override is None:
        return found
    given = (
        override.input_per_mtok,
        override.output_per_mtok,
        override.cached_input_per_mtok,
        override.cache_write_per_mtok,
    )
    known = (found.input, found.output, found.cache_read, found.cache_write)
    pairs = list(zip(given, known, strict=True))
    in_rate, out_rate, read_rate, write_rate = (mine if mine is not None else db for mine, db in pairs)
    from_database = any(mine is None and theirs is not None for mine, theirs in pairs)
    return Rates(
        input=in_rate,
        output=out_rate,
        cache_read=read_rate,
        cache_write=write_rate,
        source="config+genai-prices" if from_database else "config",
        model_id=found.model_id if from_database else None,
        max_output=override.max_output_tokens,
    )


def _rate(prices: ModelPrice, key: str, prompt_tokens: int) -> Decimal | None:
    from genai_prices.types import TieredPrices

    value = getattr(prices, key, None)
    if isinstance(value, TieredPrices):
        for tier in reversed(value.tiers):
            if prompt_tokens > tier.start:
                return Decimal(tier.price)
        return Decimal(value.base)
    return Decimal(value) if value is not None else None


def cost(tokens: Tokens, rates: Rates) -> Cost:
    """`tokens` at `rates`: each part with tokens at its own rate."""
    parts: dict[Part, Decimal] = {}
    priced = True
    fresh, read, written = rates.input, rates.cache_read, rates.cache_write
    counted: tuple[tuple[Part, int, Decimal | None], ...] = (  # as `rates.rate(part)`, without its lookups
        ("input", tokens.input, fresh),
        ("cache_read", tokens.cache_read, fresh if read is None else read),
        ("cache_write", tokens.cache_write, fresh if written is None else written),
        ("output", tokens.output, rates.output),
    )
    for part, count, rate in counted:
        if not count:
            continue
        if rate is None:
            priced = False
            continue
        parts[part] = rate * count / MTOK
    known = fresh is not None or rates.output is not None
    return Cost(
        usd=sum(parts.values(), Decimal(0)) if priced else None,
        tokens=tokens,
        parts=parts,
        source=rates.source if known else None,
        model_id=rates.model_id,
    )


def price(
    usage: Usage | None,
    *,
    provider_type: str,
    upstream_model: str,
    override: Pricing | None,
    at: datetime,
    base_url: str | None = None,
) -> Cost:
    """What `usage` cost on a deployment (its provider `type`, upstream model id and
    `pricing:` block) at the time of the call. `usd` is None when unpriced."""
    tokens = split_usage(usage)
    found = rates(
        provider_type,
        upstream_model,
        override=override,
        at=at,
        base_url=base_url,
        prompt_tokens=tokens.prompt,
    )
    return cost(tokens, found)


def output_allowance(call: Call, *, max_output: int | None, default_output: int) -> int:
    """The most output tokens a call can produce: what it asked for (`max_tokens`, or
    `max_completion_tokens`), else `default_output`, capped by the model's `max_output`."""
    if call.operation in (Operation.EMBEDDINGS, Operation.COUNT_TOKENS, Operation.CHAT_TOKENS):
        return 0
    asked = call.body.get("max_tokens") or call.body.get("max_completion_tokens")
    allowance = asked if isinstance(asked, int) and asked > 0 else default_output
    return min(allowance, max_output) if max_output is not None else allowance


def estimate(
    call: Call,
    prompt_tokens: int,
    *,
    rates: Rates,
    max_output: int | None = None,
    default_output: int = 4096,
) -> Decimal | None:
    """The worst case a call can cost, for a budget hold: every prompt token at the input
    rate (no cache discount) plus its whole output allowance at the output rate.

    `max_output` is the model's largest answer when known (default: `rates.max_output`).
    None when the input or output rate is unknown: a hold cannot be sized.
    """
    if rates.input is None or rates.output is None:
        return None
    cap = max_output if max_output is not None else rates.max_output
    allowance = output_allowance(call, max_output=cap, default_output=default_output)
    return (rates.input * prompt_tokens + rates.output * allowance) / MTOK


def base_url_of(settings: ProviderSettings) -> str | None:
    """An OpenAI-compatible provider's `base_url`, which says whose prices apply."""
    url = getattr(settings, "base_url", None)
    return url.get_secret_value() if url is not None and hasattr(url, "get_secret_value") else None


def list_price(model: str, deployment: Deployment, settings: ProviderSettings) -> float | None:
    """Input plus output USD per million tokens now, for the `cost` routing strategy
    (routing.deployments.DeploymentCost): the override's rates, else the database's."""
    found = rates(
        settings.type,
        deployment.model or model,
        override=deployment.pricing,
        base_url=base_url_of(settings),
    )
    if found.input is None and found.output is None:
        return None
    return float((found.input or 0) + (found.output or 0))


@dataclass(frozen=True, slots=True)
class PricedDeployment:
    """What pricing needs to know about one deployment."""

    provider_type: str
    upstream_model: str
    override: Pricing | None = None
    base_url: str | None = None

    def rates(self, *, at: datetime | None = None, prompt_tokens: int = 0) -> Rates:
        steady = steady_rates(self)
        if steady is not None:
            return steady
        return rates(
            self.provider_type,
            self.upstream_model,
            override=self.override,
            at=at,
            base_url=self.base_url,
            prompt_tokens=prompt_tokens,
        )

    def price(self, usage: Usage | None, *, at: datetime) -> Cost:
        """`price` of `usage` on this deployment."""
        tokens = split_usage(usage)
        return cost(tokens, self.rates(at=at, prompt_tokens=tokens.prompt))


RATE_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")


@functools.lru_cache(maxsize=4096)
def steady_rates(entry: PricedDeployment) -> Rates | None:
    """The deployment's rates when they depend on neither the time nor the prompt's size (the
    database has one undated price for it without tiers, or does not know it), else None.

    Remembered: every governed request prices its deployment twice (the hold, the cost), and
    `rates` takes about 20 µs a call (measured), most of it rebuilding the same `Rates`.
    """
    from genai_prices.types import TieredPrices

    model = database_model(entry.provider_type, entry.upstream_model, base_url=entry.base_url)
    if model is not None:
        prices = model.prices
        if isinstance(prices, list) or any(
            isinstance(getattr(prices, key, None), TieredPrices) for key in RATE_KEYS
        ):
            return None
    return rates(entry.provider_type, entry.upstream_model, override=entry.override, base_url=entry.base_url)


class PriceBook:
    """Every configured deployment's pricing, by the key `ctx.route.deployment` names it
    with, and each public model's deployments: what a spend log and budget holds need.
    Built once from the config (no I/O; the price database loads on first use)."""

    def __init__(self, config: GatewayConfig) -> None:
        self._deployments: dict[str, PricedDeployment] = {}
        self._models: dict[str, tuple[PricedDeployment, ...]] = {}
        for name, group in config.models.items():
            priced = []
            for index, deployment in enumerate(group.deployments):
                settings = config.providers[deployment.provider]
                entry = PricedDeployment(
                    provider_type=settings.type,
                    upstream_model=deployment.model or name,
                    override=deployment.pricing,
                    base_url=base_url_of(settings),
                )
                self._deployments[deployment_key(name, index, deployment)] = entry
                priced.append(entry)
            self._models[name] = tuple(priced)

    def deployment(self, key: str) -> PricedDeployment | None:
        return self._deployments.get(key)

    def cost(self, route: Route | None, usage: Usage | None, *, at: datetime) -> Cost:
        """What a served call cost (`ctx.route`, `ctx.usage`); unpriced when nothing served
        or the deployment is not in this book."""
        entry = self._deployments.get(route.deployment) if route is not None else None
        if entry is None:
            return Cost(usd=None, tokens=split_usage(usage))
        return entry.price(usage, at=at)

    def estimate(
        self,
        model: str,
        call: Call,
        prompt_tokens: int,
        *,
        default_output: int = 4096,
        at: datetime | None = None,
    ) -> Decimal | None:
        """The worst case over the public model's deployments (routing may pick any of
        them): the largest `estimate` among the priced ones; None when none is priced, or
        the model is unknown. Unpriced deployments are left out: their calls charge nothing."""
        found = [
            estimate(
                call,
                prompt_tokens,
                rates=entry.rates(at=at, prompt_tokens=prompt_tokens),
                default_output=default_output,
            )
            for entry in self._models.get(model, ())
        ]
        priced = [value for value in found if value is not None]
        return max(priced) if priced else None
