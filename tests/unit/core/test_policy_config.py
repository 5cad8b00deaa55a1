"""`templates:`, `policies:` and `cache:` in the config (core/policy_config.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.policy_config import PromptTemplate


def config(**extra: Any) -> dict[str, Any]:
    return {
        "providers": {"mock": {"type": "mock"}},
        "models": {"m": {"deployments": [{"provider": "mock", "model": "x"}]}},
        **extra,
    }


def test_the_issues_example_loads() -> None:
    loaded = GatewayConfig.model_validate(
        config(
            templates={
                "support-reply": {
                    "version": "2",
                    "variables": ["product", "tone"],
                    "messages": [
                        {"role": "system", "content": "You support {{product}}."},
                        {"role": "user", "content": "{{question}}"},
                    ],
                }
            },
            policies={
                "house-rules": {
                    "system_prompt": {"mode": "prepend", "content": "Answer in English."},
                    "max_tokens": 512,
                    "refused_params": ["logprobs"],
                }
            },
            models={
                "m": {
                    "deployments": [{"provider": "mock", "model": "x"}],
                    "policy": "house-rules",
                    "cache": {"ttl": 300, "max_entries": 1000},
                }
            },
        )
    )
    template = loaded.templates["support-reply"]
    assert isinstance(template, PromptTemplate)
    assert template.declared() == {"product": None, "question": None, "tone": None}
    assert loaded.models["m"].cache is not None and loaded.models["m"].cache.scope == "team"


def test_a_model_naming_an_unknown_policy_is_refused() -> None:
    bad = config()
    bad["models"]["m"]["policy"] = "nope"
    with pytest.raises(ValidationError, match="no policy named 'nope'"):
        GatewayConfig.model_validate(bad)


def test_versions_of_a_template_are_distinct_and_cache_settings_strict() -> None:
    twice = {"versions": [{"messages": [{"role": "user", "content": "a"}]}] * 2}
    with pytest.raises(ValidationError, match="its own 'version'"):
        GatewayConfig.model_validate(config(templates={"t": twice}))
    with pytest.raises(ValidationError):
        GatewayConfig.model_validate(config(cache={"scope": "everyone"}))
