"""Every error leaves the API as a Kubernetes ``Status`` object with the right HTTP code.

Unexpected exceptions become a 500 ``Status`` with a generic message (details go to the server
log, never to the client).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from flowyard.api.json import JSONResponse
from flowyard.errors import (
    BadRequestError,
    FlowyardError,
    InternalError,
    MethodNotAllowedError,
    NotFoundError,
)

log = logging.getLogger(__name__)


def status_response(error: FlowyardError) -> Response:
    return JSONResponse(error.to_status(), status_code=error.code)


async def _flowyard(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, FlowyardError)
    return status_response(exc)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return status_response(
            NotFoundError(f"the server could not find the requested resource ({request.url.path})")
        )
    if exc.status_code == 405:
        return status_response(
            MethodNotAllowedError(
                f"the server does not allow {request.method} on {request.url.path}"
            )
        )
    error = FlowyardError(str(exc.detail))
    return JSONResponse({**error.to_status(), "code": exc.status_code}, status_code=exc.status_code)


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
    )
    return status_response(BadRequestError(f"bad request: {problems}"))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return status_response(
        InternalError(
            "internal error; the server log has the details (this is a bug: please report it)"
        )
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(FlowyardError, _flowyard)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Exception, _unexpected)
