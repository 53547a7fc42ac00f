"""KFP-shaped errors: every failure under ``/apis/v2beta1`` leaves as a gRPC-gateway status.

KFP's API server is a gRPC service behind grpc-gateway, so its error bodies are
``{"error": msg, "code": <gRPC code>, "message": msg, "details": [...]}`` with the HTTP status
grpc-gateway derives from the gRPC code. :class:`KfpRoute` wraps every route of the KFP router so
flowyard errors, request validation errors and unexpected exceptions all take that shape (the
rest of the server keeps answering with Kubernetes ``Status`` objects).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from flowyard.api.json import JSONResponse
from flowyard.errors import (
    AlreadyExistsError,
    BadRequestError,
    FlowyardError,
    InternalError,
    NotFoundError,
)

log = logging.getLogger(__name__)

# gRPC codes (google.rpc.Code) and the HTTP status grpc-gateway gives each.
INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED = 3, 5, 6, 7
FAILED_PRECONDITION, ABORTED, INTERNAL, UNAVAILABLE, UNAUTHENTICATED = 9, 10, 13, 14, 16
RESOURCE_EXHAUSTED, UNIMPLEMENTED = 8, 12
HTTP_OF_GRPC = {
    INVALID_ARGUMENT: 400,
    NOT_FOUND: 404,
    ALREADY_EXISTS: 409,
    PERMISSION_DENIED: 403,
    FAILED_PRECONDITION: 400,
    ABORTED: 409,
    INTERNAL: 500,
    UNAVAILABLE: 503,
    UNAUTHENTICATED: 401,
    RESOURCE_EXHAUSTED: 429,
    UNIMPLEMENTED: 501,
}
_GRPC_OF_HTTP = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 410: 9, 413: 8, 415: 3, 422: 3, 503: 14}


class FailedPreconditionError(FlowyardError):
    """The object is not in a state that allows the call (terminate a finished run, retry a
    successful one); gRPC ``FAILED_PRECONDITION``, HTTP 400 as KFP answers."""

    code = 400
    reason = "FailedPrecondition"


def grpc_code(error: FlowyardError) -> int:
    """The gRPC code KFP's server would use for ``error``."""
    if isinstance(error, FailedPreconditionError):
        return FAILED_PRECONDITION
    if isinstance(error, AlreadyExistsError):
        return ALREADY_EXISTS
    if error.code == 409:
        return ABORTED
    return _GRPC_OF_HTTP.get(error.code, INTERNAL)


def error_body(error: FlowyardError) -> dict[str, Any]:
    """The grpc-gateway JSON body for ``error``; field causes become a google.rpc.BadRequest
    detail so clients can read which field was wrong."""
    code = grpc_code(error)
    details: list[dict[str, Any]] = []
    if error.causes:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "field_violations": [
                    {"field": c.field, "description": c.message} for c in error.causes
                ],
            }
        )
    return {"error": error.message, "code": code, "message": error.message, "details": details}


def error_response(error: FlowyardError) -> Response:
    code = grpc_code(error)
    return JSONResponse(error_body(error), status_code=HTTP_OF_GRPC.get(code, 500))


def _validation_error(exc: RequestValidationError) -> FlowyardError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
    )
    return BadRequestError(f"invalid request: {problems}")


def _http_error(exc: StarletteHTTPException) -> FlowyardError:
    if exc.status_code == 404:
        return NotFoundError(str(exc.detail))
    return BadRequestError(f"invalid request: {exc.detail}")


class KfpRoute(APIRoute):
    """An APIRoute whose errors are KFP (grpc-gateway) error bodies, never a bare 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except FlowyardError as exc:
                return error_response(exc)
            except RequestValidationError as exc:
                return error_response(_validation_error(exc))
            except StarletteHTTPException as exc:  # e.g. FastAPI could not parse the body
                return error_response(_http_error(exc))
            except UnicodeDecodeError:
                return error_response(BadRequestError("the request body is not UTF-8 text"))
            except Exception:
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                return error_response(
                    InternalError("internal error; the server log has the details")
                )

        return route
