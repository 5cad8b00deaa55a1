"""Prompt templates: a request's `prompt: {id, version?, variables}` rendered into messages.

The renderer is a strict placeholder substitution (`{{name}}`, core/policy_config.py), not a
template language: no expressions, no attribute access, no loops, so a template or a
variable's value can never run code or reach the gateway's objects. A variable's value is
inserted verbatim (a value holding `{{x}}` is not rendered again).

Finding and rendering are the same for every front door; only where the rendered messages
go differs (`PLACEMENTS`): in front of chat's `messages`, in front of a Responses request's
`input` as message items, or, on Anthropic's `/v1/messages`, system messages in front of
its `system` and the turns in front of its `messages`. The template's `model` and
`parameters` fill in only what the request does not set. Runs before the model is resolved
(services/pipeline.py), so a template's default model routes like one the client named.
Templates come from the config and from the admin API (`/admin/templates`,
services/stored_templates.py).

On `/v1/responses`, `prompt` is also OpenAI's own field for the prompts it stores: an id
naming no gateway template is left in the body for a deployment serving the Responses API
natively to resolve upstream (a translated one refuses it with a 404 naming the id).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.errors import InvalidRequest, NotFound
from llm_gateway.core.policy_config import PLACEHOLDER, PromptTemplate, TemplateSpec, TemplateVersions
from llm_gateway.core.types import JSON, Message
from llm_gateway.services.responses_request import input_items
from llm_gateway.services.stored_templates import StoredTemplates

PROMPT_FIELD = "prompt"
"""The gateway's own field (the shape OpenAI's Responses API uses); never sent upstream
once rendered."""
RESPONSES_PARAMETERS = {"max_tokens": "max_output_tokens", "max_completion_tokens": "max_output_tokens"}
"""A template's chat parameter names as a Responses request spells them; others are the same."""
ANTHROPIC_PARAMETERS = {"max_completion_tokens": "max_tokens"}
"""... and as an Anthropic `/v1/messages` request does."""
SYSTEM_ROLES = frozenset({"system", "developer"})
"""Template roles that go to Anthropic's `system` rather than its turns."""


class TemplateNotFound(NotFound):
    default_code = "template_not_found"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A request's `prompt`, found and rendered: what every front door places in its body."""

    id: str
    template: PromptTemplate
    messages: list[Message]


Placement = Callable[[JSON, Rendered], None]
"""Puts the rendered messages and the template's parameters into one front door's body."""


def into_messages(body: JSON, rendered: Rendered) -> None:
    """Chat: the template's messages in front of the request's own."""
    own = body.get("messages")
    body["messages"] = [*rendered.messages, *(own if isinstance(own, list) else [])]
    for name, value in rendered.template.parameters.items():
        body.setdefault(name, value)


def into_input(body: JSON, rendered: Rendered) -> None:
    """Responses: the template's messages as message items in front of the request's
    `input` (a string input becoming one user message after them)."""
    items: list[JSON] = [
        {"type": "message", "role": message["role"], "content": message["content"]}
        for message in rendered.messages
    ]
    body["input"] = [*items, *input_items(body)]
    for name, value in rendered.template.parameters.items():
        body.setdefault(RESPONSES_PARAMETERS.get(name, name), value)


def into_anthropic(body: JSON, rendered: Rendered) -> None:
    """Anthropic `/v1/messages`: the template's system and developer messages in front of
    the request's `system` (a string, or a text block before its blocks), its turns in front
    of the request's `messages`."""
    system = [str(m["content"]) for m in rendered.messages if m["role"] in SYSTEM_ROLES]
    if system:
        body["system"] = _before_system("\n\n".join(system), body.get("system"))
    turns = [m for m in rendered.messages if m["role"] not in SYSTEM_ROLES]
    own = body.get("messages")
    body["messages"] = [*turns, *(own if isinstance(own, list) else [])]
    for name, value in rendered.template.parameters.items():
        body.setdefault(ANTHROPIC_PARAMETERS.get(name, name), value)


def _before_system(text: str, own: Any) -> Any:
    if own is None or own == "":
        return text
    if isinstance(own, str):
        return f"{text}\n\n{own}"
    if isinstance(own, list):
        return [{"type": "text", "text": text}, *own]
    raise InvalidRequest("'system' must be a string or an array of text blocks", param="system")


PLACEMENTS: dict[Operation, Placement] = {
    Operation.CHAT: into_messages,
    Operation.RESPONSES: into_input,
    Operation.RESPONSES_INPUT_TOKENS: into_input,
    Operation.MESSAGES: into_anthropic,
    Operation.COUNT_TOKENS: into_anthropic,
}
"""The operations whose requests may name a template; any other's `prompt` is its own
(the legacy completions prompt) and is left alone."""
UPSTREAM_PROMPTS = frozenset({Operation.RESPONSES, Operation.RESPONSES_INPUT_TOKENS})
"""Operations where an id naming no gateway template may be an upstream's stored prompt."""


class Templates:
    """The config's templates, then those added through the admin API (`stored`). The admin
    API refuses a name the config has; one the config gains on a reload is the config's."""

    def __init__(self, specs: Mapping[str, TemplateSpec], stored: StoredTemplates | None = None) -> None:
        self._versions: dict[str, list[PromptTemplate]] = {
            name: list(spec.versions) if isinstance(spec, TemplateVersions) else [spec]
            for name, spec in specs.items()
        }
        self._stored = stored

    def versions(self, name: str) -> list[PromptTemplate] | None:
        versions = self._versions.get(name)
        if versions is None and self._stored is not None:
            versions = self._stored.get(name)
        return versions

    def find(self, name: str, version: str | None) -> PromptTemplate:
        versions = self.versions(name)
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

    def rendered(self, prompt: Any) -> Rendered:
        """The template a `prompt` field names, rendered with its variables (400 / 404)."""
        if not isinstance(prompt, dict) or not isinstance(prompt.get("id"), str):
            raise InvalidRequest("'prompt' must be an object with a string 'id'", param="prompt")
        version = prompt.get("version")
        if version is not None and not isinstance(version, str | int):
            raise InvalidRequest("'prompt.version' must be a string", param="prompt.version")
        template = self.find(prompt["id"], None if version is None else str(version))
        variables = prompt.get("variables") or {}
        if not isinstance(variables, dict):
            raise InvalidRequest("'prompt.variables' must be an object", param="prompt.variables")
        return Rendered(prompt["id"], template, render(template, variables))

    def apply(self, ctx: RequestContext, call: Call) -> None:
        """Replace the body's `prompt` by the rendered messages (400 / 404 on a bad one);
        nothing for an operation without templates, or an upstream's stored prompt."""
        place = PLACEMENTS.get(call.operation)
        if place is None or PROMPT_FIELD not in call.body:
            return
        if call.operation in UPSTREAM_PROMPTS and not self._names(call.body[PROMPT_FIELD]):
            return
        rendered = self.rendered(call.body.pop(PROMPT_FIELD))
        place(call.body, rendered)
        if call.model is None and rendered.template.model is not None:
            call.model = rendered.template.model
            call.body["model"] = rendered.template.model
        ctx.template = (rendered.id, rendered.template.version)

    def _names(self, prompt: Any) -> bool:
        """Whether `prompt` refers to one of these templates (by a string id)."""
        name = prompt.get("id") if isinstance(prompt, dict) else None
        return isinstance(name, str) and self.versions(name) is not None


def render(template: PromptTemplate, variables: Mapping[str, Any]) -> list[Message]:
    """The template's messages with every placeholder filled: a variable the template does
    not declare, or a required one missing, is a 400 naming it. A value is a string, a
    number, or an `input_text` part (what OpenAI's SDK sends for a Responses prompt)."""
    declared = template.declared()
    for name in variables:
        if name not in declared:
            raise InvalidRequest(
                f"prompt template has no variable {name!r} (it has: {', '.join(declared) or 'none'})",
                param=f"prompt.variables.{name}",
            )
    values: dict[str, str] = {}
    for name, default in declared.items():
        value = _text(variables.get(name, default))
        if value is None:
            raise InvalidRequest(
                f"prompt template variable {name!r} is required", param=f"prompt.variables.{name}"
            )
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidRequest(
                f"prompt template variable {name!r} must be a string, a number or an input_text part",
                param=f"prompt.variables.{name}",
            )
        values[name] = str(value)
    return [
        {"role": message.role, "content": PLACEHOLDER.sub(lambda m: values[m.group(1)], message.content)}
        for message in template.messages
    ]


def _text(value: Any) -> Any:
    """An `input_text` part's text; any other value as it is."""
    if isinstance(value, dict) and value.get("type") == "input_text" and isinstance(value.get("text"), str):
        return value["text"]
    return value
