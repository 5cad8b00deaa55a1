"""Prompt templates, system policies and the response cache, as configured (docs/policies.md).

Kept apart from core/config.py (which has no room) so one reader sees every policy that
can apply: `templates:` and `policies:` by name at the top level, `cache:` on a model (and
as the defaults a key or team that turns caching on gets). All frozen, unknown keys errors.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from llm_gateway.core.strict import Seconds, StrictModel

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
"""`{{name}}` (spaces inside the braces allowed): the only syntax a template knows."""


class TemplateVariable(StrictModel):
    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    default: str | None = None
    """Used when the client sends none; without one the variable is required."""


class TemplateMessage(StrictModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str


class PromptTemplate(StrictModel):
    """One version of a named template: messages with `{{variable}}` placeholders."""

    version: Annotated[str, Field(min_length=1, max_length=64)] = "1"
    variables: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | TemplateVariable] = []
    """Declared variables (a name, or `{name, default}`); every placeholder in `messages` is
    declared too (required unless listed here with a default)."""
    messages: Annotated[list[TemplateMessage], Field(min_length=1)]
    model: str | None = None
    """The model used when the request names none."""
    parameters: dict[str, Any] = {}
    """Request parameters (`temperature`, `max_tokens`, ...) the request's own override."""

    def declared(self) -> dict[str, str | None]:
        """Every variable this version knows → its default (None: required)."""
        names: dict[str, str | None] = {}
        for message in self.messages:
            for name in PLACEHOLDER.findall(message.content):
                names.setdefault(name, None)
        for variable in self.variables:
            if isinstance(variable, str):
                names.setdefault(variable, None)
            else:
                names[variable.name] = variable.default
        return names


class TemplateVersions(StrictModel):
    """Several versions of one template; a request naming no version gets the last."""

    versions: Annotated[list[PromptTemplate], Field(min_length=1)]

    @model_validator(mode="after")
    def _distinct(self) -> TemplateVersions:
        seen = [template.version for template in self.versions]
        if len(seen) != len(set(seen)):
            raise ValueError("each version of a template must have its own 'version'")
        return self


class SystemPrompt(StrictModel):
    mode: Literal["prepend", "append", "replace"] = "prepend"
    """Before the client's system prompt, after it, or instead of it."""
    content: Annotated[str, Field(min_length=1)]


class ParamRange(StrictModel):
    min: float | None = None
    max: float | None = None


class Policy(StrictModel):
    """What a request must satisfy, attached to a model (`models.<name>.policy`), a team or a
    key (`policy` in their metadata). All that apply are combined, each can only tighten."""

    system_prompt: SystemPrompt | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    """A cap on `max_tokens` / `max_completion_tokens` (Anthropic's `max_tokens` alike)."""
    temperature: ParamRange | None = None
    top_p: ParamRange | None = None
    on_violation: Literal["refuse", "clamp"] = "refuse"
    """For `max_tokens` and the ranges: refuse the request (400) or clamp the value."""
    refused_params: list[str] = []
    """Parameters a request may not set (`logprobs`; `n` is refused only above 1)."""
    max_prompt_tokens: Annotated[int, Field(gt=0)] | None = None
    """The largest prompt, counted offline (services/tokens.py)."""
    models: list[str] | None = None
    """Public model names or globs a request may use; None: any (403 otherwise)."""


class CacheSettings(StrictModel):
    """The exact-match response cache of a model (or the defaults for keys and teams that
    turn it on). In memory per instance, or in Redis (shared) when `redis_url` is set."""

    ttl: Seconds = 300
    max_entries: Annotated[int, Field(gt=0)] = 1000
    """For the in-memory store (least recently used go first); Redis expires by TTL only."""
    scope: Literal["team", "key", "global"] = "team"
    """Whose requests share answers: the caller's team (a key without one: the key), the
    key, or everyone (`global`, only when written here)."""
    tool_calls: bool = False
    """Cache answers that call tools (off: such answers are never stored)."""


TemplateSpec = PromptTemplate | TemplateVersions


def unknown_policy(attached: dict[str, str | None], policies: dict[str, Policy]) -> str | None:
    """Why a model's `policy` names no configured policy, or None."""
    for model, name in attached.items():
        if name is not None and name not in policies:
            return f"models.{model}.policy: no policy named {name!r} under policies:"
    return None
