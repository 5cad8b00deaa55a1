"""Every error outside the per-request routes leaves the gateway here, once: never a
traceback, never a secret.

OpenAI-shaped, except in two cases where the caller's own dialect is used (Google's on the
Gemini door's `/v1beta/` paths and for a request with `x-goog-api-key`, Anthropic's when
the request is Anthropic-styled, `api.anthropic.anthropic_styled`): routes marked
`callers_dialect` (the models API both SDKs call), and a path no route serves, which is a
404 naming the endpoint as unsupported rather than a bare "Not Found". A known path asked
with the wrong method stays a 405.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from llm_gateway.api.anthropic import anthropic_styled, error_json
from llm_gateway.api.gemini import error_json as gemini_error_json
from llm_gateway.api.gemini import gemini_styled, split_method
from llm_gateway.core.errors import GatewayError, InvalidRequest, NotFound

log = logging.getLogger("llm_gateway.errors")

_BY_STATUS: dict[int, type[GatewayError]] = {404: NotFound}
CALLERS_DIALECT = "callers_dialect"
F = TypeVar("F", bound=Callable[..., Any])


def callers_dialect(endpoint: F) -> F:
    """Mark a FastAPI route whose errors answer in the caller's dialect (see the module doc)."""
    setattr(endpoint, CALLERS_DIALECT, True)
    return endpoint


def error_response(error: GatewayError, request: Request | None = None) -> Response:
    """`error` as a response: Google-shaped on the Gemini door's paths, Anthropic-shaped for
    an Anthropic-styled `request`, else OpenAI's."""
    if request is not None and gemini_styled(request.url.path, request.headers):
        content = orjson.dumps(gemini_error_json(error))
    elif request is not None and anthropic_styled(request.headers):
        content = orjson.dumps(error_json(error, request.scope.get("state", {}).get("request_id")))
    else:
        content = orjson.dumps(error.to_body())
    return Response(
        content=content, status_code=error.status_code, headers=error.headers, media_type="application/json"
    )


def unsupported_endpoint(request: Request) -> NotFound:
    return NotFound(
        f"{request.method} {request.url.path} is not an endpoint this gateway supports "
        "(llm-gateway serves the chat, completions, embeddings, messages, responses, Gemini "
        "generateContent and models APIs)",
        code="unsupported_endpoint",
    )


def _in_callers_dialect(request: Request) -> Request | None:
    endpoint = request.scope.get("endpoint")
    return request if getattr(endpoint, CALLERS_DIALECT, False) else None


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    request.scope.setdefault("state", {})["error"] = exc  # for the access log and metrics
    if exc.status_code >= 500:
        log.warning("%s %s -> %d %s", request.method, request.url.path, exc.status_code, exc.message)
    return error_response(exc, _in_callers_dialect(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404 and "endpoint" not in request.scope:  # no route matched
        unsupported = request.scope.setdefault("state", {})["error"] = unsupported_endpoint(request)
        return error_response(unsupported, request)
    if exc.status_code == 405 and split_method(request.url.path) is not None:  # `{model}:{method}` unserved
        unsupported = request.scope.setdefault("state", {})["error"] = unsupported_endpoint(request)
        return error_response(unsupported, request)
    cls = _BY_STATUS.get(exc.status_code, GatewayError)
    error = cls(str(exc.detail) if exc.detail else "error")
    response = error_response(error)
    response.status_code = exc.status_code
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
    return error_response(InvalidRequest(f"{field or 'request'}: {first.get('msg', 'invalid')}", param=field))


async def _unexpected(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get("state", {}).get("request_id", "")
    log.error("unhandled error on %s (request %s)", request.url.path, request_id, exc_info=exc)
    return error_response(GatewayError(f"internal gateway error (request id {request_id})"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
