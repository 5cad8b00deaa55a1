"""The few checks the gateway makes on a chat body itself; everything else is the upstream's call."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.api.body import check_chat_request, parse_object, read_body
from llm_gateway.core.errors import InvalidRequest

HI = [{"role": "user", "content": "hi"}]


def rejected(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        check_chat_request(body)
    assert caught.value.status_code == 400
    return caught.value


@pytest.mark.parametrize(
    "body",
    [
        {"messages": HI},
        {"model": "m", "messages": HI, "stream": True},
        {"model": "m", "messages": HI, "stream": False, "tools": [], "x_future": {"a": 1}},
        {"model": None, "messages": HI, "stream": None},
        {"messages": [{"role": "tool", "tool_call_id": "c"}, {"role": "assistant", "content": None}]},
    ],
)
def test_valid_bodies_pass(body: dict[str, Any]) -> None:
    check_chat_request(body)


@pytest.mark.parametrize("model", [42, 1.5, True, ["m"], {"name": "m"}])
def test_model_of_the_wrong_type(model: Any) -> None:
    error = rejected({"model": model, "messages": HI})
    assert error.param == "model"
    assert "'model'" in error.message and "string" in error.message


def test_missing_messages() -> None:
    error = rejected({"model": "m"})
    assert error.param == "messages"
    assert error.code == "missing_required_parameter"
    assert "'messages'" in error.message


@pytest.mark.parametrize("messages", ["hi", {"role": "user"}, None, 3, []])
def test_messages_not_a_non_empty_list(messages: Any) -> None:
    error = rejected({"model": "m", "messages": messages})
    assert error.param == "messages"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"content": "no role"}], "messages[0]"),
        ([*HI, "just text"], "messages[1]"),
        ([*HI, *HI, {"role": 7, "content": "x"}], "messages[2]"),
        ([None], "messages[0]"),
    ],
)
def test_messages_without_a_role(messages: list[Any], param: str) -> None:
    error = rejected({"model": "m", "messages": messages})
    assert error.param == param
    assert f"'{param}'" in error.message


@pytest.mark.parametrize("stream", ["yes", "true", 1, 0, {}])
def test_stream_not_a_boolean(stream: Any) -> None:
    error = rejected({"model": "m", "messages": HI, "stream": stream})
    assert error.param == "stream"


def test_model_is_checked_before_messages() -> None:
    assert rejected({"model": 1}).param == "model"


def receiving(*parts: bytes) -> Any:
    """An ASGI `receive` that yields `parts` as one body in several messages."""
    messages = [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


async def test_read_body_joins_a_chunked_upload() -> None:
    assert await read_body(receiving(b'{"a": ', b"[1, ", b"2]}")) == b'{"a": [1, 2]}'
    assert await read_body(receiving(b"")) == b""


def test_parse_object_parses_once() -> None:
    assert parse_object(b'{"a": [1, {"b": null}], "c": "\\u00e9"}') == {"a": [1, {"b": None}], "c": "\u00e9"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "empty"),
        (b'{"model": "m", "messages": [', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_parse_object_rejects_what_is_not_an_object(raw: bytes, expected: str) -> None:
    with pytest.raises(InvalidRequest, match=expected) as caught:
        parse_object(raw)
    assert caught.value.status_code == 400
