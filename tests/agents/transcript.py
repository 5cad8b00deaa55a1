"""Golden transcripts of an agent run, compared by structure rather than by bytes.

A transcript is what a coding-agent CLI sent to the gateway (with the status it got back)
and what the gateway forwarded upstream. Ids, timestamps, session metadata and prompt text
change between runs and CLI releases; what is kept is the shape a gateway must honour:
the endpoint, the body's keys, model and stream flag, the tools by name, the conversation
as roles and block/item types (tool calls by name), and the protocol headers. A test
compares the shapes with the golden file; `UPDATE_GOLDEN=1` rewrites it (after a CLI bump).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent / "golden"
KEPT_HEADERS = ("anthropic-version", "anthropic-beta")
"""Headers whose value is part of the protocol (kept); credentials are kept as present/absent."""
CREDENTIAL_HEADERS = ("authorization", "x-api-key")


def headers_shape(headers: dict[str, str]) -> dict[str, Any]:
    lowered = {k.lower(): v for k, v in headers.items()}
    shape: dict[str, Any] = {name: lowered[name] for name in KEPT_HEADERS if name in lowered}
    if "anthropic-beta" in shape:
        shape["anthropic-beta"] = sorted(shape["anthropic-beta"].split(","))
    shape["credentials"] = [name for name in CREDENTIAL_HEADERS if name in lowered]
    return shape


def tool_name(tool: dict[str, Any]) -> str:
    function = tool.get("function") or {}
    return str(tool.get("name") or function.get("name") or f"<{tool.get('type')}>")


def content_shape(content: Any) -> Any:
    if isinstance(content, str) or content is None:
        return type(content).__name__
    return [block_shape(block) for block in content]


def block_shape(block: dict[str, Any]) -> str:
    kind = str(block.get("type"))
    if kind in ("tool_use", "function_call", "custom_tool_call"):
        return f"{kind}:{block.get('name')}"
    if kind == "tool_result":
        return f"tool_result:{content_shape(block.get('content'))}"
    return kind


def message_shape(message: dict[str, Any]) -> dict[str, Any]:
    shape: dict[str, Any] = {"role": message.get("role"), "content": content_shape(message.get("content"))}
    calls = message.get("tool_calls")
    if calls:
        shape["tool_calls"] = [call["function"]["name"] for call in calls]
    return shape


def item_shape(item: dict[str, Any]) -> Any:
    if item.get("type", "message") == "message":
        return {"role": item.get("role"), "content": content_shape(item.get("content"))}
    return block_shape(item)


def body_shape(body: Any) -> Any:
    if not isinstance(body, dict):
        return type(body).__name__
    shape: dict[str, Any] = {"keys": sorted(body), "model": body.get("model"), "stream": body.get("stream")}
    if "tools" in body:
        shape["tools"] = [tool_name(tool) for tool in body["tools"] or []]
    if "tool_choice" in body:
        shape["tool_choice"] = body["tool_choice"]
    if "system" in body:
        shape["system"] = content_shape(body["system"])
    if "messages" in body:
        shape["messages"] = [message_shape(m) for m in body["messages"]]
    if "input" in body:
        items = body["input"]
        shape["input"] = "str" if isinstance(items, str) else [item_shape(i) for i in items]
    return shape


def exchange_shape(
    path: str, headers: dict[str, str], body: Any, status: int | None = None
) -> dict[str, Any]:
    shape: dict[str, Any] = {"path": path}
    if status is not None:
        shape["status"] = status
    return {**shape, "headers": headers_shape(headers), "body": body_shape(body)}


def check_golden(name: str, transcript: dict[str, Any]) -> None:
    """Compare `transcript` with tests/agents/golden/NAME.json (or record it, UPDATE_GOLDEN=1)."""
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1" or not path.exists():
        if os.environ.get("CI") == "true" and not path.exists():
            raise AssertionError(f"golden transcript {path} is missing; record it with UPDATE_GOLDEN=1")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(transcript, indent=1, sort_keys=True) + "\n")
        return
    golden = json.loads(path.read_text())
    assert transcript == golden, f"transcript differs from {path} (UPDATE_GOLDEN=1 re-records it)"
