"""Every error leaves the gateway here, once, OpenAI-shaped: never a traceback, never a secret."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from llm_gateway.core.errors import GatewayError, InvalidRequest, NotFound

log = logging.getLogger("llm_gateway.errors")

_BY_STATUS: dict[int, type[GatewayError]] = {404: NotFound}


def error_response(error: GatewayError) -> Response:
    return Response(
        content=orjson.dumps(error.to_body()),
        status_code=error.status_code,
        headers=error.headers,
        media_type="application/json",
    )


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if exc.status_code >= 500:
        log.warning("%s %s -> %d %s", request.method, request.url.path, exc.status_code, exc.message)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
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
