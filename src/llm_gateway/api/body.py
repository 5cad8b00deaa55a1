"""Reading a JSON body once, and checking the few chat fields the gateway itself relies on."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Receive

from llm_gateway.core.errors import InvalidRequest


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
    return body


def check_chat_request(body: dict[str, Any]) -> None:
    """The minimum a chat request must satisfy before routing; the rest is the upstream's call."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("'model' must be a string", param="model")
    if "messages" not in body:
        raise InvalidRequest(
            "'messages' is a required property", param="messages", code="missing_required_parameter"
        )
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"'messages[{index}]' must be an object with a string 'role'", param=f"messages[{index}]"
            )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
