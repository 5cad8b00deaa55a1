"""Admin-managed prompt templates in the store, and the in-memory set requests read."""

from __future__ import annotations

import pytest

from llm_gateway.core.errors import Conflict
from llm_gateway.core.policy_config import PromptTemplate
from llm_gateway.services.stored_templates import StoredTemplates
from llm_gateway.store.db import Database
from llm_gateway.store.templates import TemplateStore


def version(number: str, text: str = "Hi {{name}}") -> PromptTemplate:
    return PromptTemplate.model_validate({"version": number, "messages": [{"role": "user", "content": text}]})


async def test_versions_keep_their_order_and_a_duplicate_is_a_conflict(database: Database) -> None:
    store = TemplateStore(database.engine)
    start = await store.revision()
    for number in ("2", "10", "1"):
        await store.add("greet", version(number).model_dump(mode="json"))
    await store.add("other", version("1").model_dump(mode="json"))
    with pytest.raises(Conflict, match="'greet' already has a version '10'"):
        await store.add("greet", version("10", "changed").model_dump(mode="json"))
    rows = await store.all()
    assert [(r.name, r.version) for r in rows] == [
        ("greet", "2"),
        ("greet", "10"),
        ("greet", "1"),
        ("other", "1"),
    ]
    assert rows[0].spec["messages"] == [{"role": "user", "content": "Hi {{name}}"}]
    assert await store.revision() == start + 4  # the refused add bumped nothing
    assert await store.delete("greet", "10") == 1
    assert await store.delete("greet", "10") == 0
    assert await store.delete("greet") == 2
    assert [r.name for r in await store.all()] == ["other"]
    assert await store.revision() == start + 6


async def test_another_instance_sees_a_write_on_its_next_refresh(database: Database) -> None:
    here = StoredTemplates(TemplateStore(database.engine), refresh_seconds=1)
    there = StoredTemplates(TemplateStore(database.engine), refresh_seconds=1)
    await here.load()
    await there.load()
    await here.add("greet", version("1"))
    await here.add("greet", version("2", "Hello {{name}}"))
    assert [t.version for t in here.get("greet") or []] == ["1", "2"]
    assert there.get("greet") is None
    await there.refresh()
    assert [t.messages[0].content for t in there.get("greet") or []] == ["Hi {{name}}", "Hello {{name}}"]
    await here.delete("greet", "2")
    await there.refresh()
    assert [t.version for t in there.get("greet") or []] == ["1"]


async def test_a_stored_version_that_no_longer_validates_is_skipped(database: Database) -> None:
    store = TemplateStore(database.engine)
    await store.add("broken", {"version": "1", "messages": []})
    await store.add("fine", version("1").model_dump(mode="json"))
    stored = StoredTemplates(store, refresh_seconds=1)
    await stored.load()
    assert stored.get("broken") is None and stored.get("fine") is not None
