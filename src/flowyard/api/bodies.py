"""Reading request bodies: size limit, then JSON or YAML decoded safely
(:mod:`flowyard.resources.documents`)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from flowyard.errors import BadRequestError, TooLargeError, UnsupportedMediaTypeError
from flowyard.resources.documents import load_json, load_yaml

MAX_BODY_BYTES = 3 * 1024 * 1024  # Kubernetes' request limit for one object


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(_too_large(int(declared), limit))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(_too_large(size, limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return (
        f"request entity too large: {size} bytes is over the limit of {limit} bytes for one "
        "object; keep large data in artifacts and reference it by URI"
    )


async def read_object(request: Request) -> dict[str, Any]:
    """The request body as one object (JSON, or YAML with a YAML content type)."""
    raw = await read_body(request)
    if not raw.strip():
        raise BadRequestError("the request body is empty; send the object as JSON")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype in ("application/yaml", "application/x-yaml", "text/yaml"):
        # Parsing YAML is slow (seconds for megabytes): keep it off the event loop.
        value = await run_in_threadpool(load_yaml, raw, "the request body")
    elif ctype in ("application/json", "application/merge-patch+json", "*/*", ""):
        value = await run_in_threadpool(load_json, raw, "the request body")
    else:
        raise UnsupportedMediaTypeError(
            f'unsupported content type "{ctype}"; use application/json, application/yaml or '
            "application/merge-patch+json"
        )
    if value is None:  # a YAML body with only comments or document markers
        raise BadRequestError("the request body is empty (no object in it); send the object")
    if not isinstance(value, dict):
        raise BadRequestError(f"the request body must be a JSON object, not {type(value).__name__}")
    return value
