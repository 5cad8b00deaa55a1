"""Which models a caller may use: every scope's `models` globs must allow the model.

A hook, first in the chain, because the hook is where the model is known: the pipeline
has resolved the public name (the default model filled in) before `before` runs, and
the check then covers every front door and operation at once. The caller's own
`fallbacks` are checked too (they are models it asks for); the fallbacks configured on
an allowed model are the operator's choice and are part of that model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from llm_gateway.core.context import Call, Principal, RequestContext
from llm_gateway.core.errors import PermissionDenied
from llm_gateway.services.hooks import Answer, Hook


def allows(patterns: Sequence[str] | None, model: str) -> bool:
    """Whether `model` matches one of `patterns` (`*`, `?`, `[...]`, case-sensitive); None allows all."""
    return patterns is None or any(fnmatchcase(model, pattern) for pattern in patterns)


def may_use(principal: Principal, model: str) -> bool:
    return all(allows(scope.models, model) for scope in principal.scopes)


def usable(principal: Principal, models: Iterable[str]) -> list[str]:
    """The models of `models` the principal may use, in order."""
    return [model for model in models if may_use(principal, model)]


class ModelAccess(Hook):
    """Refuses (403 `model_not_allowed`) a model that the key or its team may not use."""

    name = "access"

    async def before(self, ctx: RequestContext, call: Call) -> Answer | None:
        principal = ctx.principal
        if not principal.scopes:
            return None
        for model in (call.model, *(ctx.fallbacks or ())):
            if model is not None:
                self._check(principal, model)
        return None

    @staticmethod
    def _check(principal: Principal, model: str) -> None:
        for scope in principal.scopes:
            if not allows(scope.models, model):
                raise PermissionDenied(
                    f"model {model!r} is not allowed for this {scope.kind} ({scope.name or scope.id})",
                    code="model_not_allowed",
                    param="model",
                )
