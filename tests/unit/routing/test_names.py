"""Model aliases and wildcard models: what a requested name resolves to, how derived groups
are keyed (health and breakers per upstream model), and what the config refuses."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llm_gateway.core.capabilities import Capability
from llm_gateway.core.config import GatewayConfig, ProviderSettings
from llm_gateway.core.errors import ModelNotFound
from llm_gateway.routing.deployments import Listed, ModelCatalog
from llm_gateway.routing.names import Recent, match_wildcard
from tests.stubs import provider

MODELS: dict[str, Any] = {
    "fast-model": {"deployments": [{"provider": "p", "model": "up-fast"}]},
    "gpt-4o": {"deployments": [{"provider": "p"}]},
    "anthropic/*": {"deployments": [{"provider": "p", "model": "{model}"}]},
    "anthropic/claude-opus-*": {"deployments": [{"provider": "p", "model": "opus-{model}"}]},
    "whole-*": {"deployments": [{"provider": "p"}]},
}
ALIASES = {"claude-3-5-haiku-*": "fast-model", "gpt-4": "gpt-4o", "gpt-4*": "fast-model"}


def config(
    models: dict[str, Any] | None = None, aliases: dict[str, str] | None = None, **extra: Any
) -> GatewayConfig:
    data = {
        "providers": {"p": ProviderSettings(type="stub")},
        "models": MODELS if models is None else models,
        "aliases": ALIASES if aliases is None else aliases,
        **extra,
    }
    return GatewayConfig.model_validate(data)


def catalog() -> ModelCatalog:
    return ModelCatalog(config(), {"p": provider("p")})


def test_an_exact_alias_is_its_targets_own_group() -> None:
    names = catalog()
    assert names.group("gpt-4") is names.group("gpt-4o")


def test_a_glob_alias_resolves_and_the_exact_alias_wins_over_it() -> None:
    names = catalog()
    assert names.group("claude-3-5-haiku-20241022").name == "fast-model"
    assert names.group("gpt-4-turbo").name == "fast-model"
    assert names.group("gpt-4").name == "gpt-4o"


def test_a_wildcard_model_passes_the_matched_part_upstream() -> None:
    group = catalog().resolve("anthropic/claude-sonnet-4-5")
    assert group.name == "anthropic/claude-sonnet-4-5"
    (target,) = group.targets
    assert target.model == "claude-sonnet-4-5"
    assert target.key == "anthropic/*/0:p/claude-sonnet-4-5"


def test_the_most_specific_wildcard_wins() -> None:
    (target,) = catalog().group("anthropic/claude-opus-4").targets
    assert target.model == "opus-4"
    assert target.key.startswith("anthropic/claude-opus-*/0:")


def test_a_wildcard_deployment_without_model_gets_the_whole_requested_name() -> None:
    (target,) = catalog().group("whole-thing").targets
    assert target.model == "whole-thing"


def test_derived_groups_are_cached_per_requested_name() -> None:
    names = catalog()
    assert names.group("anthropic/x") is names.group("anthropic/x")
    assert names.resolve("anthropic/x", Capability.CHAT) is names.group("anthropic/x")


def test_unknown_names_and_a_bare_prefix_are_not_found() -> None:
    names = catalog()
    for name in ("nope", "anthropic/", "claude-3-opus"):
        with pytest.raises(ModelNotFound):
            names.group(name)


def test_star_matches_at_least_one_character() -> None:
    assert match_wildcard("a/*", "a/") is None
    assert match_wildcard("a/*-x", "a/b-x") is not None
    assert match_wildcard("a/*-x", "a/b-y") is None


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    recent: Recent[int] = Recent(2)
    recent.put("a", 1)
    recent.put("b", 2)
    assert recent.get("a") == 1
    recent.put("c", 3)
    assert recent.get("b") is None and recent.get("a") == 1 and len(recent) == 2


def test_health_keys_never_list_wildcards_as_groups() -> None:
    names = catalog()
    assert names.names == ["fast-model", "gpt-4o"]
    assert all("*" not in target.key for group in names.groups for target in group.targets)


def test_the_listing_shows_models_aliases_and_patterns() -> None:
    assert catalog().listed() == [
        Listed("fast-model"),
        Listed("gpt-4o"),
        Listed("gpt-4", alias_of="gpt-4o"),
        Listed("anthropic/*", pattern=True),
        Listed("anthropic/claude-opus-*", pattern=True),
        Listed("whole-*", pattern=True),
        Listed("claude-3-5-haiku-*", alias_of="fast-model", pattern=True),
        Listed("gpt-4*", alias_of="fast-model", pattern=True),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aliases": {"x": "missing"}}, "aliases.x: 'missing' is not a configured"),
        ({"aliases": {"x": "anthropic/*"}}, "is not a configured (non-wildcard) model"),
        ({"aliases": {"gpt-4o": "fast-model"}}, "is already a configured model"),
        ({"models": {**MODELS, "a/*/*": MODELS["whole-*"]}}, "exactly one '*'"),
        ({"models": {"m": {"deployments": [{"provider": "p", "model": "{model}"}]}}}, "only"),
        ({"default_model": "anthropic/*"}, "is a wildcard"),
        ({"models": {**MODELS, "m": {**MODELS["gpt-4o"], "fallbacks": ["anthropic/*"]}}}, "fallbacks"),
    ],
)
def test_naming_mistakes_are_refused_at_load(change: dict[str, Any], message: str) -> None:
    with pytest.raises(
        ValidationError, match=message.replace("*", r"\*").replace("(", r"\(").replace(")", r"\)")
    ):
        config(**{"aliases": ALIASES, "models": MODELS, **change})
