"""Reading a JSON body once, and checking the few fields the gateway itself relies on.

Every per-request route takes its body through `check_content_type`, `read_body` and
`parse_object`: JSON by its `Content-Type` (415 otherwise), an object, nested at most
`MAX_DEPTH` levels, and without the fields that would steer the upstream request
(`UPSTREAM_FIELDS`, see docs/security.md).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Receive

from llm_gateway.api.refusals import UnsupportedMediaType
from llm_gateway.core.errors import InvalidRequest

MAX_DEPTH = 128
"""Arrays and objects inside one another, at most. orjson reads up to 1,024 levels but
writes only 254, so a deeper body would parse here and fail when sent upstream."""

UPSTREAM_FIELDS = (
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "organization",
    "extra_headers",
    "headers",
)
"""Body fields some clients use to point a request at another upstream or add credentials
or headers to it. The gateway never honours them (the body is forwarded with unknown fields
kept, so it would pass them on verbatim): they are refused."""


def check_content_type(content_type: str | None) -> None:
    """415 unless the media type is JSON: `application/json` (any parameters) or `+json`."""
    media = (content_type or "").partition(";")[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    shown = f"'{media}'" if media else "none"
    raise UnsupportedMediaType(
        f"the request body must be JSON, sent with 'Content-Type: application/json' (got {shown})"
    )


async def read_body(receive: Receive) -> bytes:
    """The whole request body (the limits middleware caps its size while it is read)."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    parts = [body]
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
    return b"".join(parts)


def parse_object(raw: bytes) -> dict[str, Any]:
    """The body as a dict, parsed once with orjson; anything else is a 400."""
    if not raw:
        raise InvalidRequest("request body is empty; a JSON object is required")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc.msg} (at byte {exc.pos})") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and nesting_depth(body) > MAX_DEPTH:
        raise InvalidRequest(f"request body is nested more than {MAX_DEPTH} levels deep (the limit)")
    for name in UPSTREAM_FIELDS:
        if name in body:
            raise InvalidRequest(
                f"'{name}' is not accepted: the gateway chooses the upstream, its address and credentials",
                param=name,
            )
    return body


def nesting_depth(value: Any) -> int:
    """How many arrays and objects deep `value` goes, walked without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def check_chat_request(body: dict[str, Any]) -> None:
    """The minimum a chat request must satisfy before routing; the rest is the upstream's call."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("'model' must be a string", param="model")
    if "messages" not in body and "prompt" in body:  # a template's messages (services/templates.py)
        body["messages"] = []
    elif "messages" not in body:
        raise InvalidRequest(
            "'messages' is a required property", param="messages", code="missing_required_parameter"
        )
    messages = body["messages"]
    if not isinstance(messages, list) or (not messages and "prompt" not in body):
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"'messages[{index}]' must be an object with a string 'role'", param=f"messages[{index}]"
            )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        # Several providers read `include_usage` from it to decide what a stream reports.
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
