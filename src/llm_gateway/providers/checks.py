"""Checks every native translator (anthropic, gemini, bedrock) makes on an OpenAI chat request,
and the field checks of the `/v1/messages` front door.

OpenAI-compatible upstreams take the request as it is; the native ones must refuse what
they cannot honour rather than drop it, and they refuse it in the same words: OpenAI's
(`'param' why`) for chat requests, the Messages API's (`param: why`) at its front door.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.types import JSON

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


Kind = type | tuple[type, ...]


def invalid(param: str, why: str) -> InvalidRequest:
    """A 400 that names the offending field, as OpenAI's own errors do."""
    return InvalidRequest(f"'{param}' {why}", param=param)


def unsupported(param: str, why: str) -> InvalidRequest:
    """A 400 for a field the upstream cannot honour, with OpenAI's `unsupported_parameter` code."""
    return InvalidRequest(f"'{param}' {why}", param=param, code="unsupported_parameter")


def string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid(param, "must be a string")
    return value


def number(body: JSON, key: str, kind: Kind = (int, float)) -> Any:
    """`body[key]` when absent or of `kind` (a bool is no number), else a 400."""
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
        raise invalid(key, "must be an integer" if kind is int else "must be a number")
    return value


def optional_object(value: Any, param: str) -> JSON:
    """An optional object field: absent is empty, anything but an object is a 400."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(param, "must be an object")
    return value


def optional_array(value: Any, param: str) -> list[Any]:
    """An optional array field: absent is empty, anything but an array is a 400."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(param, "must be an array")
    return value


def messages_invalid(param: str, why: str) -> InvalidRequest:
    """A 400 worded as the Messages API words its own validation errors."""
    return InvalidRequest(f"{param}: {why}", param=param)


def messages_string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise messages_invalid(param, "Input should be a valid string")
    return value


def messages_array(value: Any, param: str) -> list[Any]:
    """An optional array field of a Messages body: absent is empty, anything else is a 400."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise messages_invalid(param, "Input should be a valid list")
    return value


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
