"""What a reload carries over and what it refuses (the process-level behaviour is in
tests/integration/test_reload.py)."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.reloader import restart_needed
from llm_gateway.runtime import Runtime
from tests.stubs import gateway_config


def config(**extra: Any) -> Any:
    data: dict[str, Any] = {
        "providers": {
            "one": {"type": "openai", "api_key": "sk-one", "base_url": "http://127.0.0.1:9/v1"},
            "two": {"type": "openai", "api_key": "sk-two", "base_url": "http://127.0.0.1:9/v1"},
        },
        "models": {"m": {"deployments": [{"provider": "one"}, {"provider": "two"}]}},
        "database_url": "sqlite:///:memory:",
        "master_key": "sk-master-0123456789",
    }
    data.update(extra)
    return gateway_config(data)


async def test_a_successor_keeps_unchanged_providers_and_every_stateful_part() -> None:
    first = Runtime.build(config())
    second_config = config(
        providers={
            "one": {"type": "openai", "api_key": "sk-one", "base_url": "http://127.0.0.1:9/v1"},
            "two": {"type": "openai", "api_key": "sk-two-rotated", "base_url": "http://127.0.0.1:9/v1"},
        }
    )
    second = Runtime.build(second_config, previous=first)
    assert second.providers["one"] is first.providers["one"]  # same pool
    assert second.providers["two"] is not first.providers["two"]  # a rotated key gets a new one
    assert second.identities is first.identities and second.keys is first.keys
    assert second.governance is not None and first.governance is not None
    assert second.governance.counters is first.governance.counters
    assert second.governance.spend is first.governance.spend
    assert second.responses is first.responses
    assert second.executor.health is first.executor.health
    assert second.inherited and not first.inherited
    await second.start()  # starts nothing: the predecessor's parts are running (or not) already
    closed: list[str] = []
    for name, provider in first.providers.items():
        original = provider.aclose

        async def recording(original: Any = original, name: str = name) -> None:
            closed.append(name)
            await original()

        provider.aclose = recording  # type: ignore[method-assign]
    await first.retire(second)
    assert closed == ["two"]  # the replaced provider's pool is closed, the kept one's is not
    await second.aclose()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"master_key": "sk-other-master-0123"}, "master_key"),
        ({"database_url": "sqlite:///./other.db"}, "database_url"),
        ({"redis_url": "redis://127.0.0.1:6379/1"}, "redis_url"),
        ({"server": {"port": 9001}}, "server"),
        ({"governance": {"spend_log": {"sink": "memory"}}}, "governance.spend_log"),
        ({"responses": {"store": "memory"}}, "responses"),
        ({"responses": {"ttl_days": 1}}, "responses"),
    ],
)
def test_changes_only_a_restart_can_apply_are_named(change: dict[str, Any], named: str) -> None:
    old = config(governance={}) if "governance" in change else config()
    problem = restart_needed(old, config(**change))
    assert problem is not None and named in problem


def test_routing_models_and_limits_reload_freely() -> None:
    old = config(governance={})
    new = config(
        governance={"scopes": [{"id": "all", "rpm": 5}]},
        routing={"max_attempts": 1},
        models={"m": {"deployments": [{"provider": "one"}]}, "n": {"deployments": [{"provider": "two"}]}},
    )
    assert restart_needed(old, new) is None
