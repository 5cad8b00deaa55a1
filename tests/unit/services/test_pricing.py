"""Costs in exact dollars: every provider type, every token kind once at its own rate,
historic prices, tiers, unpriced calls, overrides, worst-case estimates, and the price book."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from llm_gateway.core.config import GatewayConfig, Pricing
from llm_gateway.core.context import Call, Operation, Route
from llm_gateway.core.types import Usage
from llm_gateway.providers.anthropic.response import chat_usage
from llm_gateway.providers.bedrock.response import converse_usage
from llm_gateway.providers.gemini.response import to_usage
from llm_gateway.providers.mock import MockSettings
from llm_gateway.providers.openai import OpenAISettings
from llm_gateway.services.pricing import (
    PriceBook,
    PricedDeployment,
    Rates,
    Tokens,
    estimate,
    list_price,
    price,
    rates,
    split_usage,
    steady_rates,
)

AT = datetime(2025, 9, 1, tzinfo=UTC)
D = Decimal


def openai_usage(prompt: int, completion: int, *, cached: int = 0, reasoning: int = 0) -> Usage:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def cost_of(usage: Usage, provider_type: str, model: str, override: Pricing | None = None, **kw: Any) -> Any:
    return price(usage, provider_type=provider_type, upstream_model=model, override=override, at=AT, **kw)


@pytest.mark.parametrize("provider_type", ["openai", "azure"])
def test_openai_cached_and_reasoning_tokens_are_each_charged_once(provider_type: str) -> None:
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output per million.
    cost = cost_of(openai_usage(1000, 500, cached=200, reasoning=100), provider_type, "gpt-4o")
    assert cost.tokens == Tokens(input=800, cache_read=200, cache_write=0, output=500)
    assert cost.parts == {"input": D("0.002"), "cache_read": D("0.00025"), "output": D("0.005")}
    assert cost.usd == D("0.00725")
    assert (cost.source, cost.model_id) == ("genai-prices", "gpt-4o")


def test_anthropic_fresh_input_cache_reads_and_writes_and_output() -> None:
    # claude-3-5-sonnet: $3 input, $0.30 cache read, $3.75 cache write, $15 output.
    usage = chat_usage(
        {
            "input_tokens": 100,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 200,
            "output_tokens": 50,
        }
    )
    cost = cost_of(usage, "anthropic", "claude-3-5-sonnet-20240620")
    assert cost.tokens == Tokens(input=100, cache_read=1000, cache_write=200, output=50)
    assert cost.parts == {
        "input": D("0.0003"),
        "cache_read": D("0.0003"),
        "cache_write": D("0.00075"),
        "output": D("0.00075"),
    }
    assert cost.usd == D("0.0021")


def test_bedrock_model_ids_and_cache_tokens() -> None:
    usage = converse_usage(
        {"inputTokens": 100, "cacheReadInputTokens": 1000, "cacheWriteInputTokens": 200, "outputTokens": 50}
    )
    for model in (
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
    ):
        assert cost_of(usage, "bedrock", model).usd == D("0.0021"), model


def test_gemini_prices_by_tier_with_thoughts_as_output() -> None:
    # gemini-2.5-pro: $1.25 / $0.125 cached / $10 output up to 200k prompt tokens; $2.50 / $0.25 / $15 above.
    usage = to_usage(
        {
            "promptTokenCount": 1000,
            "cachedContentTokenCount": 400,
            "candidatesTokenCount": 80,
            "thoughtsTokenCount": 20,
        }
    )
    assert usage is not None
    small = cost_of(usage, "gemini", "models/gemini-2.5-pro")
    assert small.tokens == Tokens(input=600, cache_read=400, output=100)
    assert small.usd == D("0.00075") + D("0.00005") + D("0.001")
    large = cost_of(openai_usage(300_000, 1000, cached=100_000), "gemini", "gemini-2.5-pro")
    assert large.parts == {"input": D("0.5"), "cache_read": D("0.025"), "output": D("0.015")}
    assert large.usd == D("0.540")


def test_historic_prices_follow_the_call_time() -> None:
    # o3 was $10 / $40 per million until 2025-06-10, then $2 / $8.
    usage = openai_usage(1_000_000, 1_000_000)
    before = price(
        usage, provider_type="openai", upstream_model="o3", override=None, at=datetime(2025, 5, 1, tzinfo=UTC)
    )
    after = price(usage, provider_type="openai", upstream_model="o3", override=None, at=AT)
    assert (before.usd, after.usd) == (D("50"), D("10"))


def test_a_deployment_remembers_only_rates_that_cannot_change() -> None:
    """Dated prices (o3's cut) and tiers (Gemini's long context) are read on every call; one
    undated price, or an override alone, is remembered."""
    usage = openai_usage(1_000_000, 1_000_000)
    o3 = PricedDeployment("openai", "o3")
    assert steady_rates(o3) is None
    assert o3.price(usage, at=datetime(2025, 5, 1, tzinfo=UTC)).usd == D("50")
    assert o3.price(usage, at=AT).usd == D("10")
    gemini = PricedDeployment("gemini", "gemini-2.5-pro")
    assert steady_rates(gemini) is None
    assert gemini.rates(at=AT, prompt_tokens=250_000).input == D("2.5")
    assert gemini.rates(at=AT).input == D("1.25")
    assert steady_rates(PricedDeployment("openai", "gpt-4o")) == rates("openai", "gpt-4o", at=AT)
    custom = PricedDeployment("mock", "m", Pricing(input_per_mtok=1.0, output_per_mtok=2.0))
    assert custom.rates() is steady_rates(custom)
    assert custom.price(usage, at=AT).usd == D("3")


@pytest.mark.parametrize(
    ("provider_type", "model", "base_url"),
    [
        ("openai", "no-such-model-anywhere", None),
        ("mock", "mock", None),
        ("anthropic", "claude-from-the-future-9", None),
        ("openai", "gpt-4o", "http://127.0.0.1:9999/v1"),  # self-hosted: not OpenAI's bill
        ("some-new-type", "gpt-4o", None),
    ],
)
def test_unknown_models_are_unpriced_never_free(provider_type: str, model: str, base_url: str | None) -> None:
    cost = cost_of(openai_usage(10, 10), provider_type, model, base_url=base_url)
    assert cost.usd is None
    assert cost.source is None
    assert cost.parts == {}


def test_an_openai_compatible_vendor_is_priced_by_its_base_url() -> None:
    # Groq's llama-3.3-70b-versatile: $0.59 input, $0.79 output.
    cost = cost_of(
        openai_usage(1000, 1000),
        "openai",
        "llama-3.3-70b-versatile",
        base_url="https://api.groq.com/openai/v1",
    )
    assert cost.usd == D("0.00138")


def test_an_override_wins_and_fills_in_from_the_database() -> None:
    usage = openai_usage(1000, 500, cached=200)
    full = Pricing(input_per_mtok=D("1"), output_per_mtok=D("2"), cached_input_per_mtok=D("0.1"))
    cost = cost_of(usage, "openai", "gpt-4o", full)
    assert cost.usd == D("0.0008") + D("0.00002") + D("0.001")
    assert cost.source == "config"
    partial = cost_of(usage, "openai", "gpt-4o", Pricing(output_per_mtok=D("2")))
    assert partial.parts == {"input": D("0.002"), "cache_read": D("0.00025"), "output": D("0.001")}
    assert (partial.source, partial.model_id) == ("config+genai-prices", "gpt-4o")


def test_an_override_prices_the_mock_and_cache_rates_default_to_input() -> None:
    usage = chat_usage(
        {
            "input_tokens": 100,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 100,
            "output_tokens": 10,
        }
    )
    cost = cost_of(usage, "mock", "mock", Pricing(input_per_mtok=D("3"), output_per_mtok=D("15")))
    assert cost.usd == D("0.00105")
    assert cost_of(usage, "mock", "mock", Pricing(input_per_mtok=D("3"))).usd is None  # output has no rate


def test_pricing_values_are_exact_decimals_from_yaml_floats() -> None:
    assert Pricing.model_validate({"input_per_mtok": 0.3}).input_per_mtok == D("0.3")
    with pytest.raises(ValueError):
        Pricing.model_validate({"input_per_mtok": -1})
    with pytest.raises(ValueError):
        Pricing.model_validate({"input_per_mtok": 1, "unknown": 2})


def test_split_usage_counts_each_token_once_and_clips_nonsense() -> None:
    assert split_usage(None) == Tokens()
    assert split_usage(openai_usage(10, 3, cached=50)) == Tokens(input=0, cache_read=10, output=3)
    embeddings: Usage = {"prompt_tokens": 7, "total_tokens": 7}
    assert split_usage(embeddings) == Tokens(input=7)


def test_estimate_is_the_prompt_at_input_rate_and_the_output_allowance() -> None:
    book = Rates(input=D("2"), output=D("10"))
    chat = Call(Operation.CHAT, {"max_tokens": 100})
    assert estimate(chat, 1000, rates=book) == D("0.003")
    newer = Call(Operation.CHAT, {"max_completion_tokens": 50})
    assert estimate(newer, 1000, rates=book) == D("0.0025")
    assert estimate(Call(Operation.CHAT, {}), 0, rates=book, default_output=1000) == D("0.01")
    assert estimate(chat, 0, rates=book, max_output=10) == D("0.0001")  # the model's cap wins
    capped = Rates(input=D("2"), output=D("10"), max_output=20)
    assert estimate(Call(Operation.CHAT, {}), 0, rates=capped) == D("0.0002")
    assert estimate(Call(Operation.EMBEDDINGS, {}), 1000, rates=book) == D("0.002")
    assert estimate(chat, 1000, rates=Rates(input=D("2"))) is None


def test_rates_pick_the_tier_of_the_prompt() -> None:
    assert rates("gemini", "gemini-2.5-pro", at=AT).input == D("1.25")
    assert rates("gemini", "gemini-2.5-pro", at=AT, prompt_tokens=250_000).input == D("2.5")


def config(**deployment: Any) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "providers": {"oa": OpenAISettings(type="openai"), "mock": MockSettings(type="mock")},
            "models": {
                "m": {
                    "deployments": [
                        {"provider": "oa", "model": "gpt-4o"},
                        {"provider": "mock", **deployment},
                    ]
                }
            },
        }
    )


def test_the_price_book_prices_a_served_route() -> None:
    book = PriceBook(config(pricing={"input_per_mtok": 1, "output_per_mtok": 1}))
    usage = openai_usage(1000, 1000)
    served = Route(deployment="m/0:oa/gpt-4o", provider="oa", model="gpt-4o", attempts=1)
    assert book.cost(served, usage, at=AT).usd == D("0.0125")
    mocked = Route(deployment="m/1:mock/m", provider="mock", model="m", attempts=1)
    assert book.cost(mocked, usage, at=AT).usd == D("0.002")
    assert book.cost(None, usage, at=AT).usd is None
    gone = Route(deployment="elsewhere", provider="x", model="x", attempts=1)
    assert book.cost(gone, usage, at=AT).usd is None


def test_the_price_book_holds_for_the_dearest_deployment() -> None:
    call = Call(Operation.CHAT, {"max_tokens": 1000})
    book = PriceBook(config(pricing={"input_per_mtok": 100, "output_per_mtok": 100}))
    assert book.estimate("m", call, 1000, at=AT) == D("0.2")
    cheap = PriceBook(config())  # the mock is unpriced: it charges nothing, gpt-4o is the worst case
    assert cheap.estimate("m", call, 1000, at=AT) == D("0.0125")
    assert cheap.estimate("unknown", call, 1000, at=AT) is None


def test_list_price_feeds_the_cost_strategy() -> None:
    cfg = config(pricing={"input_per_mtok": 1.5, "output_per_mtok": 6})
    deployments = cfg.models["m"].deployments
    assert list_price("m", deployments[0], cfg.providers["oa"]) == 12.5
    assert list_price("m", deployments[1], cfg.providers["mock"]) == 7.5
    bare = config()
    assert list_price("m", bare.models["m"].deployments[1], bare.providers["mock"]) is None


def test_prices_are_looked_up_without_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the price lookup tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    cost = cost_of(openai_usage(1000, 1000), "anthropic", "claude-3-7-sonnet-20250219")
    assert cost.usd == D("0.018")
