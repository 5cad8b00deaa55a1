"""The `governance:` block: validated strictly, refused with several in-process workers, and
built by the runtime as the first hook of the chain (counting in Redis when it is set)."""

from __future__ import annotations

import pytest

from llm_gateway.core.config import shared_state_problem
from llm_gateway.core.loader import ConfigError, with_server_overrides
from llm_gateway.runtime import Runtime
from llm_gateway.services.governance import GovernanceHook
from llm_gateway.store.counters import LocalCounters
from llm_gateway.store.redis_counters import RedisCounters
from llm_gateway.store.spend import JsonLinesSink
from tests.stubs import RecordingHook, mock_config


def test_defaults_and_static_scopes() -> None:
    config = mock_config(governance={"scopes": [{"id": "all", "rpm": 30, "budget_usd": "5.25"}]})
    assert config.governance is not None
    assert config.governance.on_store_error == "fail_closed"
    [scope] = config.governance.scopes
    assert (scope.kind, scope.rpm, str(scope.budget_usd), scope.budget_period) == ("team", 30, "5.25", "none")


@pytest.mark.parametrize(
    "block",
    [
        {"on_store_error": "shrug"},
        {"scopes": [{"id": "t", "rpm": 0}]},
        {"scopes": [{"id": "t", "budget_period": "hourly"}]},
        {"spend_log": {"sink": "jsonl"}},
        {"lease_ttl": 0.5},
        {"limits": {}},
    ],
)
def test_bad_blocks_are_refused(block: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        mock_config(governance=block)


def test_several_workers_need_shared_counters() -> None:
    config = mock_config(governance={})
    assert shared_state_problem(config) is None
    many = with_server_overrides(config, {"workers": 4}, "flags")
    problem = shared_state_problem(many)
    assert problem is not None and "redis_url" in problem
    shared = mock_config(governance={}, redis_url="redis://127.0.0.1:6379/15", server={"workers": 4})
    assert shared_state_problem(shared) is None
    assert shared_state_problem(mock_config(server={"workers": 4})) is None  # no governance
    keyed = mock_config(master_key="sk-master", server={"workers": 4})  # virtual keys carry limits
    assert "redis_url" in (shared_state_problem(keyed) or "")


def test_the_runtime_puts_governance_first(tmp_path: object) -> None:
    config = mock_config(governance={"spend_log": {"sink": "jsonl", "path": "/tmp/x.jsonl"}})
    runtime = Runtime.build(config, hooks=[RecordingHook()])
    first, second = runtime.hooks.hooks
    assert isinstance(first, GovernanceHook) and isinstance(second, RecordingHook)
    assert isinstance(first.counters, LocalCounters)
    assert first.spend is not None and isinstance(first.spend.sink, JsonLinesSink)
    assert set(runtime.checks) == {"governance"}


def test_redis_counters_with_a_redis_url() -> None:
    config = mock_config(governance={}, redis_url="redis://127.0.0.1:6379/15")
    hook = Runtime.build(config).governance
    assert hook is not None and isinstance(hook.counters, RedisCounters)


def test_no_block_no_hook() -> None:
    runtime = Runtime.build(mock_config())
    assert runtime.governance is None and not runtime.hooks and runtime.checks == {}
