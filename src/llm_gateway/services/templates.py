"""Prompt templates: a request's `prompt: {id, version?, variables}` rendered into messages.

The renderer is a strict placeholder substitution (`{{name}}`, core/policy_config.py), not a
template language: no expressions, no attribute access, no loops, so a template or a
variable's value can never run code or reach the gateway's objects. A variable's value is
inserted verbatim (a value holding `{{x}}` is not rendered again).

The template's messages come first, then the client's own; the template's `model` and
`parameters` fill in only what the request does not set. Runs before the model is resolved
(services/pipeline.py), so a template's default model routes like one the client named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_gateway.core.context import Call, RequestContext
from llm_gateway.core.errors import InvalidRequest, NotFound
from llm_gateway.core.policy_config import PLACEHOLDER, PromptTemplate, TemplateSpec, TemplateVersions
from llm_gateway.core.types import Message

PROMPT_FIELD = "prompt"
"""The gateway's own chat field (the shape OpenAI's Responses API uses); never sent upstream."""


class TemplateNotFound(NotFound):
    default_code = "template_not_found"


class Templates:
    def __init__(self, specs: Mapping[str, TemplateSpec]) -> None:
        self._versions: dict[str, list[PromptTemplate]] = {
            name: list(spec.versions) if isinstance(spec, TemplateVersions) else [spec]
            for name, spec in specs.items()
        }

    def find(self, name: str, version: str | None) -> PromptTemplate:
        versions = self._versions.get(name)
        if versions is None:
            raise TemplateNotFound(f"no prompt template named {name!r}", param="prompt.id")
        if version is None:
            return versions[-1]
        for template in versions:
            if template.version == version:
                return template
        raise TemplateNotFound(
            f"prompt template {name!r} has no version {version!r} "
            f"(it has: {', '.join(t.version for t in versions)})",
            param="prompt.version",
        )

    def apply(self, ctx: RequestContext, call: Call) -> None:
        """Replace the body's `prompt` by the rendered messages (400 / 404 on a bad one)."""
        prompt = call.body.pop(PROMPT_FIELD)
        if not isinstance(prompt, dict) or not isinstance(prompt.get("id"), str):
            raise InvalidRequest("'prompt' must be an object with a string 'id'", param="prompt")
        version = prompt.get("version")
        if version is not None and not isinstance(version, str | int):
            raise InvalidRequest("'prompt.version' must be a string", param="prompt.version")
        template = self.find(prompt["id"], None if version is None else str(version))
        variables = prompt.get("variables", {})
        if not isinstance(variables, dict):
            raise InvalidRequest("'prompt.variables' must be an object", param="prompt.variables")
        rendered = render(template, variables)
        own = call.body.get("messages")
        call.body["messages"] = [*rendered, *(own if isinstance(own, list) else [])]
        for name, value in template.parameters.items():
            call.body.setdefault(name, value)
        if call.model is None and template.model is not None:
            call.model = template.model
            call.body["model"] = template.model
        ctx.template = (prompt["id"], template.version)


def render(template: PromptTemplate, variables: Mapping[str, Any]) -> list[Message]:
    """The template's messages with every placeholder filled: a variable the template does
    not declare, or a required one missing, is a 400 naming it."""
    declared = template.declared()
    for name in variables:
        if name not in declared:
            raise InvalidRequest(
                f"prompt template has no variable {name!r} (it has: {', '.join(declared) or 'none'})",
                param=f"prompt.variables.{name}",
            )
    values: dict[str, str] = {}
    for name, default in declared.items():
        value = variables.get(name, default)
        if value is None:
            raise InvalidRequest(
                f"prompt template variable {name!r} is required", param=f"prompt.variables.{name}"
            )
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidRequest(
                f"prompt template variable {name!r} must be a string or a number",
                param=f"prompt.variables.{name}",
            )
        values[name] = str(value)
    return [
        {"role": message.role, "content": PLACEHOLDER.sub(lambda m: values[m.group(1)], message.content)}
        for message in template.messages
    ]
