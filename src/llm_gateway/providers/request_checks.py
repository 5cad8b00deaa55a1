"""Checks every native translator (anthropic, gemini, bedrock) makes on an OpenAI chat request.

OpenAI-compatible upstreams take the request as it is; the native ones must refuse what
they cannot honour rather than drop it, and they refuse it in the same words.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.core.errors import InvalidRequest

ROLES = ("system", "developer", "user", "assistant", "tool")

# OpenAI's reasoning_effort as the native `effort` (Anthropic and Converse have no none/minimal).
OUTPUT_EFFORTS = {
    "none": "low",
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
    "max": "max",
}


def invalid(param: str, why: str) -> InvalidRequest:
    """A 400 that names the offending field, as OpenAI's own errors do."""
    return InvalidRequest(f"'{param}' {why}", param=param)


def message_keys(*, names: bool) -> dict[str, frozenset[str]]:
    """The keys a message of each role may carry; any other key with a value is a 400.

    `name` is accepted (and not sent) only where `names`; `reasoning_content` and
    `annotations`, which the SDKs echo back from an answer, are accepted and not sent.
    """
    common = frozenset({"role", "content", "name"} if names else {"role", "content"})
    return {
        "system": common,
        "developer": common,
        "user": common,
        "assistant": common | {"tool_calls", "refusal", "reasoning_content", "annotations"},
        "tool": common | {"tool_call_id"},
    }


def message_role(message: Any, where: str, keys: dict[str, frozenset[str]], provider: str) -> str:
    """The message's role, once its keys are known ones for that role."""
    if not isinstance(message, dict):
        raise invalid(where, "must be an object")
    role = message.get("role")
    if not isinstance(role, str) or role not in keys:
        raise invalid(f"{where}.role", f"{role!r} is not supported (use {', '.join(ROLES)})")
    for key, value in message.items():
        if value is not None and key not in keys[role]:
            raise invalid(
                f"{where}.{key}", f"is not supported on a {role} message by the {provider} provider"
            )
    return role
