"""The admin API's prompt templates in memory, so a request finds one without a database round trip.

Loaded whole from the store at start and swapped in one assignment (a reader sees the old
set or the new one). Reloaded after a write through this instance's admin API, and when
the store's `templates` revision has moved, checked every `auth.refresh_seconds`: a
template added on one instance is usable on every other within that bound. If the store
cannot be read, the last set stays in use and the failure is logged. A stored version
that no longer validates is skipped, with a warning, rather than stopping the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from pydantic import ValidationError

from llm_gateway.core.policy_config import PromptTemplate
from llm_gateway.store.templates import StoredTemplate, TemplateStore

log = logging.getLogger("llm_gateway.templates")


class StoredTemplates:
    def __init__(self, store: TemplateStore, refresh_seconds: float) -> None:
        self.store = store
        self._refresh_seconds = refresh_seconds
        self._versions: dict[str, list[PromptTemplate]] = {}
        self._revision = -1
        self._timer: asyncio.Task[None] | None = None

    def get(self, name: str) -> list[PromptTemplate] | None:
        """A name's versions in the order they were added (the last is the default)."""
        return self._versions.get(name)

    async def load(self) -> None:
        revision = await self.store.revision()  # first: a write racing the read is reloaded next time
        self._versions = _indexed(await self.store.all())
        self._revision = revision

    async def refresh(self) -> None:
        if await self.store.revision() != self._revision:
            await self.load()

    async def add(self, name: str, template: PromptTemplate) -> StoredTemplate:
        stored = await self.store.add(name, template.model_dump(mode="json"))
        await self.load()
        return stored

    async def delete(self, name: str, version: str | None = None) -> int:
        deleted = await self.store.delete(name, version)
        if deleted:
            await self.load()
        return deleted

    async def start(self) -> None:
        await self.load()
        self._timer = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("could not refresh prompt templates (keeping the last ones loaded): %s", exc)

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
            self._timer = None


def _indexed(rows: Iterable[StoredTemplate]) -> dict[str, list[PromptTemplate]]:
    versions: dict[str, list[PromptTemplate]] = {}
    for row in rows:
        try:
            template = PromptTemplate.model_validate(row.spec)
        except ValidationError as exc:
            log.warning(
                "stored prompt template %r version %r is invalid, skipped: %s", row.name, row.version, exc
            )
            continue
        versions.setdefault(row.name, []).append(template)
    return versions
