"""HTTP helpers shared by the data planes: bounded body reading, JSON, error answers.

Contract: ``read_body`` never holds more than ``limit`` bytes; a larger body is drained (up to
a cap, so the client can read the answer on a kept-alive connection) and TooLargeError (413)
is raised. ``parse_json`` raises BadRequestError (400) for malformed JSON. ``error_response``
renders an error the way each protocol defines it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response

from flowyard.errors import BadRequestError, FlowyardError, TooLargeError

_DRAIN_FACTOR = 8  # drain at most this many times the limit before giving up on the body
_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return [_default(v) if isinstance(v, bytes) else v for v in obj.tolist()]
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__} as JSON")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default, option=_JSON_OPTS)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(obj), status_code=status, media_type="application/json", headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        await _drain(request, limit)
        raise TooLargeError(
            f"request body of {int(length)} bytes is over the {limit}-byte limit "
            f"(--max-request-bytes)"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            await _drain(request, limit)
            raise TooLargeError(
                f"request body is over the {limit}-byte limit (--max-request-bytes)"
            )
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _drain(request: Request, limit: int) -> None:
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit * _DRAIN_FACTOR:
                break
    except Exception:  # the client may have gone away; the 413 is all that matters
        return


def parse_json(body: bytes) -> Any:
    if not body:
        raise BadRequestError("request body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"request body is not valid JSON: {exc}") from None


def error_code(exc: BaseException) -> int:
    return exc.code if isinstance(exc, FlowyardError) else 500


def error_message(exc: BaseException) -> str:
    if isinstance(exc, FlowyardError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def error_response(exc: BaseException, style: str) -> Response:
    """``{"error": msg}`` for V1/V2 (KServe and the OIP spec); Seldon's ``status`` object."""
    code = error_code(exc)
    message = error_message(exc)
    if style == "seldon":
        reason = "MICROSERVICE_BAD_DATA" if code < 500 else "MICROSERVICE_INTERNAL_ERROR"
        body: Any = {
            "status": {"code": code, "info": message, "reason": reason, "status": "FAILURE"}
        }
    else:
        body = {"error": message}
    return json_response(body, status=code)
