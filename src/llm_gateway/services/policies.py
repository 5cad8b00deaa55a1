"""System policies: what a request must satisfy before it is routed, enforced by a hook.

A policy attaches to a model (`models.<name>.policy`), a team or a key (`policy` in their
metadata, a name under `policies:`). Every policy that applies binds, model then team then
key, and each can only tighten what the others allow: caps are the smallest, ranges the
intersection, refused parameters the union, allowed models the intersection. Only the
enforced system prompt is not combined: the most specific one wins.

A violation is a 400 (403 for a model) naming the policy and the field, never a silent
change unless the policy binding that field says `on_violation: clamp`. The hook runs before
governance, so a refused request consumes no budget and no rate limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from llm_gateway.core.config import GatewayConfig
from llm_gateway.core.context import Call, Operation, RequestContext
from llm_gateway.core.errors import InvalidRequest, PermissionDenied
from llm_gateway.core.policy_config import Policy, SystemPrompt
from llm_gateway.services.costing import counted_prompt_tokens
from llm_gateway.services.hooks import Answer, Hook
from llm_gateway.services.tokens import build_encoding, has_encoding

MAX_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
SYSTEM_ROLES = ("system", "developer")


class PolicyViolation(InvalidRequest):
    default_code = "policy_violation"


class PolicyDenied(PermissionDenied):
    default_code = "policy_violation"


@dataclass(frozen=True, slots=True)
class Bound:
    """One limit and the policy that set it (named in the refusal), clamping or not."""

    value: float
    policy: str
    clamp: bool


@dataclass(slots=True)
class Effective:
    """Every policy that applies to one request, combined."""

    system_prompt: tuple[SystemPrompt, str] | None = None
    max_tokens: Bound | None = None
    max_prompt_tokens: Bound | None = None
    low: dict[str, Bound] = field(default_factory=dict)
    high: dict[str, Bound] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    models: list[tuple[list[str], str]] = field(default_factory=list)


def combine(layers: list[tuple[str, Policy]]) -> Effective:
    """Policies least specific first (model, team, key) → the tightest of all of them."""
    out = Effective()
    for name, policy in layers:
        clamp = policy.on_violation == "clamp"
        if policy.system_prompt is not None:
            out.system_prompt = (policy.system_prompt, name)
        if policy.max_tokens is not None:
            out.max_tokens = _lower(out.max_tokens, Bound(policy.max_tokens, name, clamp))
        if policy.max_prompt_tokens is not None:
            prompt_cap = Bound(policy.max_prompt_tokens, name, False)
            out.max_prompt_tokens = _lower(out.max_prompt_tokens, prompt_cap)
        for param in ("temperature", "top_p"):
            allowed = getattr(policy, param)
            if allowed is None:
                continue
            if allowed.max is not None:
                out.high[param] = _lower(out.high.get(param), Bound(allowed.max, name, clamp))
            if allowed.min is not None:
                low = out.low.get(param)
                if low is None or allowed.min > low.value:
                    out.low[param] = Bound(allowed.min, name, clamp)
        for param in policy.refused_params:
            out.refused.setdefault(param, name)
        if policy.models is not None:
            out.models.append((policy.models, name))
    return out


def _lower(current: Bound | None, new: Bound) -> Bound:
    return new if current is None or new.value < current.value else current


def enforce(rules: Effective, call: Call) -> None:
    """Check (and where a policy says so, clamp) `call.body` in place; raises on a violation."""
    body = call.body
    for patterns, name in rules.models:
        if not any(fnmatchcase(call.model or "", pattern) for pattern in patterns):
            raise PolicyDenied(f"policy {name!r}: model {call.model!r} is not allowed", param="model")
    for param, name in rules.refused.items():
        value = body.get(param)
        if value is None or value is False or (param == "n" and isinstance(value, int) and value <= 1):
            continue
        raise PolicyViolation(f"policy {name!r}: '{param}' is not allowed", param=param)
    if rules.max_tokens is not None:
        _cap_max_tokens(rules.max_tokens, body)
    for param, bound in rules.high.items():
        _check_range(body, param, bound, above=True)
    for param, bound in rules.low.items():
        _check_range(body, param, bound, above=False)
    if rules.system_prompt is not None:
        enforce_system_prompt(call, *rules.system_prompt)
    if rules.max_prompt_tokens is not None:
        tokens = counted_prompt_tokens(call)
        limit = rules.max_prompt_tokens
        if tokens > limit.value:
            raise PolicyViolation(
                f"policy {limit.policy!r}: the prompt has {tokens} tokens, more than {int(limit.value)}",
                param="messages",
            )


def _cap_max_tokens(bound: Bound, body: dict[str, Any]) -> None:
    present = [name for name in MAX_TOKEN_FIELDS if body.get(name) is not None]
    if not present and bound.clamp:
        body["max_tokens" if "max_output_tokens" not in body else "max_output_tokens"] = int(bound.value)
        return
    for name in present:
        value = body[name]
        if isinstance(value, int | float) and not isinstance(value, bool) and value <= bound.value:
            continue
        if not bound.clamp:
            raise PolicyViolation(
                f"policy {bound.policy!r}: '{name}' must be at most {int(bound.value)}", param=name
            )
        body[name] = int(bound.value)


def _check_range(body: dict[str, Any], param: str, bound: Bound, *, above: bool) -> None:
    value = body.get(param)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    if (value <= bound.value) if above else (value >= bound.value):
        return
    if bound.clamp:
        body[param] = bound.value
        return
    limit = "at most" if above else "at least"
    raise PolicyViolation(f"policy {bound.policy!r}: '{param}' must be {limit} {bound.value:g}", param=param)


def enforce_system_prompt(call: Call, prompt: SystemPrompt, name: str) -> None:
    """The policy's system prompt before, after or instead of the client's, in the body's own
    form: chat `messages`, Anthropic `system`, Responses `instructions`."""
    body = call.body
    if call.operation is Operation.CHAT:
        messages = list(body.get("messages") or [])
        lead = 0
        while lead < len(messages) and _is_system(messages[lead]):
            lead += 1
        own = {"role": "system", "content": prompt.content}
        if prompt.mode == "replace":
            messages = [own, *(m for m in messages if not _is_system(m))]
        else:
            messages.insert(0 if prompt.mode == "prepend" else lead, own)
        body["messages"] = messages
    elif call.operation in (Operation.MESSAGES, Operation.COUNT_TOKENS):
        body["system"] = _joined(body.get("system"), prompt, blocks=True)
    elif call.operation is Operation.RESPONSES:
        body["instructions"] = _joined(body.get("instructions"), prompt, blocks=False)


def _is_system(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") in SYSTEM_ROLES


def _joined(current: Any, prompt: SystemPrompt, *, blocks: bool) -> Any:
    if current is None or current == "" or prompt.mode == "replace":
        return prompt.content
    if isinstance(current, str):
        parts = [prompt.content, current] if prompt.mode == "prepend" else [current, prompt.content]
        return "\n\n".join(parts)
    if blocks and isinstance(current, list):
        block = {"type": "text", "text": prompt.content}
        return [block, *current] if prompt.mode == "prepend" else [*current, block]
    raise PolicyViolation("the request's system prompt has a form no policy can extend", param="system")


class PolicyHook(Hook):
    """Before governance: the policies of the model, the caller's team and key, enforced."""

    name = "policy"

    def __init__(self, policies: Mapping[str, Policy], model_policies: Mapping[str, str]) -> None:
        self._policies = dict(policies)
        self._models = dict(model_policies)
        self._combined: dict[tuple[str | None, ...], Effective] = {}

    def _model_policy(self, model: str) -> str | None:
        name = self._models.get(model)
        if name is not None:
            return name
        return next((p for pattern, p in self._models.items() if fnmatchcase(model, pattern)), None)

    def rules(self, ctx: RequestContext, call: Call) -> Effective | None:
        names: list[str | None] = [self._model_policy(call.model or "")]
        for kind in ("team", "key"):
            scope = next((s for s in ctx.principal.scopes if s.kind == kind), None)
            attached = scope.metadata.get("policy") if scope is not None else None
            names.append(attached if isinstance(attached, str) else None)
        if not any(names):
            return None
        key = tuple(names)
        rules = self._combined.get(key)
        if rules is None:
            layers = []
            for name in names:
                if name is None:
                    continue
                policy = self._policies.get(name)
                if policy is None:  # fail closed: a key names a policy this gateway lacks
                    raise PolicyDenied(f"policy {name!r} is attached to the caller but not configured")
                layers.append((name, policy))
            rules = self._combined[key] = combine(layers)
        return rules

    async def before(self, ctx: RequestContext, call: Call) -> Answer | None:
        if call.operation is Operation.EMBEDDINGS:
            return None
        rules = self.rules(ctx, call)
        if rules is not None:
            if rules.max_prompt_tokens is not None and not has_encoding(call.model or ""):
                await build_encoding(call.model or "")  # once per encoding, off the event loop
            enforce(rules, call)
        return None


def build_policy(config: GatewayConfig) -> PolicyHook | None:
    """The policy hook when `policies:` is configured (keys and teams name those), else None."""
    if not config.policies:
        return None
    attached = {name: group.policy for name, group in config.models.items() if group.policy is not None}
    return PolicyHook(config.policies, attached)
