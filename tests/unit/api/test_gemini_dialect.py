"""The Gemini door's routing and error shape (api/gemini.py, api/routes.py): the
`{model}:{method}` split, a `?key=` moved into the key header and out of the query
string, and Google's error body with google.rpc status names."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llm_gateway.api.gemini import METHODS, GeminiGenerate, error_json, key_from_query, split_method
from llm_gateway.api.routes import default_routes
from llm_gateway.core.errors import AuthenticationFailed, InvalidRequest, ModelNotFound, UpstreamRateLimited


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("/v1beta/models/gpt-4o:generateContent", ("gpt-4o", "generateContent")),
        ("/v1/models/gpt-4o:streamGenerateContent", ("gpt-4o", "streamGenerateContent")),
        ("/v1beta/models/bedrock.claude-v2:1:countTokens", ("bedrock.claude-v2:1", "countTokens")),
        ("/v1beta/models/anthropic/claude:embedContent", ("anthropic/claude", "embedContent")),
        ("/v1beta/models/gpt-4o", None),
        ("/v1beta/models/:generateContent", None),
        ("/v1/chat/completions", None),
    ],
)
def test_split_method(path: str, found: tuple[str, str] | None) -> None:
    assert split_method(path) == found


def test_the_route_table_leaves_the_model_in_path_params() -> None:
    routes = default_routes()
    scope: dict[str, Any] = {
        "path": "/v1beta/models/m:batchEmbedContents",
        "query_string": b"",
        "headers": [],
    }
    endpoint = routes.gemini(scope)
    assert endpoint is not None and endpoint.dialect is METHODS["batchEmbedContents"]
    assert scope["path_params"] == {"model": "m"}
    assert routes.gemini({"path": "/v1beta/models/m:predict", "query_string": b"", "headers": []}) is None
    assert (
        routes.dialect_for("/v1beta/models")
        .error_body(InvalidRequest("x"), None)
        .startswith(b'{"error":{"code"')
    )


def test_a_query_key_becomes_a_header() -> None:
    scope: dict[str, Any] = {"query_string": b"alt=sse&key=secret-1", "headers": [(b"host", b"h")]}
    key_from_query(scope)
    assert scope["query_string"] == b"alt=sse"
    assert (b"x-goog-api-key", b"secret-1") in scope["headers"]


def test_a_header_key_wins_over_the_query() -> None:
    scope: dict[str, Any] = {"query_string": b"key=q", "headers": [(b"x-goog-api-key", b"h")]}
    key_from_query(scope)
    assert scope["query_string"] == b"" and scope["headers"] == [(b"x-goog-api-key", b"h")]


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (InvalidRequest("bad"), 400, "INVALID_ARGUMENT"),
        (AuthenticationFailed("who"), 401, "UNAUTHENTICATED"),
        (ModelNotFound("none"), 404, "NOT_FOUND"),
        (UpstreamRateLimited("slow down"), 429, "RESOURCE_EXHAUSTED"),
    ],
)
def test_error_shape(error: Any, code: int, status: str) -> None:
    assert error_json(error) == {"error": {"code": code, "message": error.message, "status": status}}


def test_a_mid_stream_error_is_one_data_event() -> None:
    event = GeminiGenerate().error_event(InvalidRequest("late"), None)
    assert event.startswith(b"data: ") and event.endswith(b"\r\n\r\n")
    assert orjson.loads(event[6:])["error"]["status"] == "INVALID_ARGUMENT"
