"""Which configured model a requested name means: exact names, aliases and wildcard models.

    exact model name  →  that model
    exact alias       →  its target
    glob alias        →  its target            (the most specific glob wins)
    wildcard model    →  a group derived for the requested name  (the most specific wins)

"Most specific" is the pattern with the most literal (non-glob) characters; a tie goes to
the one configured first. Pure: no providers, no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Generic, TypeVar

from llm_gateway.core.config import MODEL_PLACEHOLDER, is_pattern

V = TypeVar("V")
RECENT_NAMES = 1024
"""How many requested names' derived groups are kept (least recently used go first)."""


@dataclass(frozen=True, slots=True)
class Wildcard:
    """A wildcard model (`anthropic/*`) and what it matched in one requested name."""

    pattern: str
    matched: str
    """The part of the requested name that `*` stood for."""

    def upstream(self, requested: str, model: str | None) -> str:
        """A deployment's upstream model id for the requested name: its `model` with
        `{model}` replaced by the matched part; without `model`, the whole requested name."""
        if model is None:
            return requested
        return model.replace(MODEL_PLACEHOLDER, self.matched)


def specificity(pattern: str) -> int:
    return sum(1 for c in pattern if c not in "*?[]")


def by_specificity(patterns: list[str]) -> list[str]:
    """Most literal characters first; `sorted` is stable, so ties keep their config order."""
    return sorted(patterns, key=specificity, reverse=True)


def match_wildcard(pattern: str, name: str) -> Wildcard | None:
    """`name` against a one-`*` pattern; None when it does not match (`*` matches one or
    more characters: `anthropic/` is no model)."""
    head, _, tail = pattern.partition("*")
    if len(name) <= len(head) + len(tail) or not name.startswith(head) or not name.endswith(tail):
        return None
    return Wildcard(pattern, name[len(head) : len(name) - len(tail)])


class ModelNames:
    """The naming rules of one config: `lookup(name)` → (configured model, wildcard match)."""

    def __init__(self, models: Mapping[str, object], aliases: Mapping[str, str]) -> None:
        self.exact = {name for name in models if not is_pattern(name)}
        self.wildcards = by_specificity([name for name in models if is_pattern(name)])
        self.aliases = {alias: target for alias, target in aliases.items() if not is_pattern(alias)}
        self.alias_globs = [
            (glob, aliases[glob]) for glob in by_specificity(list(aliases)) if is_pattern(glob)
        ]

    def lookup(self, name: str) -> tuple[str, Wildcard | None] | None:
        """The configured model `name` means, with the wildcard match when it is a wildcard
        model; None when no rule matches."""
        if name in self.exact:
            return name, None
        target = self.aliases.get(name)
        if target is not None:
            return target, None
        for glob, target in self.alias_globs:
            if fnmatchcase(name, glob):
                return target, None
        for pattern in self.wildcards:
            match = match_wildcard(pattern, name)
            if match is not None:
                return pattern, match
        return None


class Recent(Generic[V]):
    """A bounded map, least recently used out first: derived groups per requested name."""

    def __init__(self, size: int = RECENT_NAMES) -> None:
        self._size = size
        self._items: OrderedDict[object, V] = OrderedDict()

    def get(self, key: object) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: object, value: V) -> V:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)
