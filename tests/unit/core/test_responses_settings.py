"""The `responses:` block: the database store by default, validated strictly, and the store
the runtime builds from it."""

from __future__ import annotations

import pytest

from llm_gateway.core.loader import ConfigError
from llm_gateway.runtime import Runtime
from llm_gateway.store.responses import MemoryResponseStore
from llm_gateway.store.responses_db import DatabaseResponseStore
from tests.stubs import mock_config


def test_the_database_for_30_days_by_default() -> None:
    settings = mock_config().responses
    assert (settings.store, settings.ttl_days, settings.ttl_seconds) == ("database", 30.0, 30 * 86400.0)
    runtime = Runtime.build(mock_config())
    assert isinstance(runtime.responses, DatabaseResponseStore)
    assert runtime.responses.database is runtime.identities.database  # type: ignore[union-attr]
    assert runtime.responses.ttl.total_seconds() == 30 * 86400.0


def test_memory_when_asked() -> None:
    runtime = Runtime.build(mock_config(responses={"store": "memory", "ttl_days": 0.5}))
    assert isinstance(runtime.responses, MemoryResponseStore)
    assert runtime.responses.ttl == 43200.0


@pytest.mark.parametrize(
    "bad", [{"store": "redis"}, {"ttl_days": 0}, {"ttl_days": -1}, {"ttl_days": 5000}, {"ttl": 3}]
)
def test_bad_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        mock_config(responses=bad)
