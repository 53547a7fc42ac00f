"""The binary tensor data extension of the V2 REST protocol.

A request whose ``Inference-Header-Content-Length`` header is set carries that many bytes of
JSON followed by raw tensor bytes; each input with ``parameters.binary_data_size`` takes its
bytes, in input order, from that tail (numbers little-endian row-major; BYTES elements each
prefixed by a 4-byte little-endian length). A response is binary when the request asks with
``parameters.binary_data_output: true`` or an output's ``parameters.binary_data: true``; the
answer then has the same header, and those outputs carry ``binary_data_size`` instead of
``data``.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson

from flowyard.errors import BadRequestError
from flowyard.serving.infer_types import (
    DATATYPE_TO_NUMPY,
    InferRequest,
    InferResponse,
    to_json_data,
)

HEADER = "inference-header-content-length"


def split_body(body: bytes, header_length: str) -> tuple[Any, bytes]:
    """The JSON part (parsed) and the binary tail of a binary-extension request."""
    try:
        length = int(header_length)
    except ValueError:
        raise BadRequestError(
            f"Inference-Header-Content-Length {header_length!r} is not a number"
        ) from None
    if length < 0 or length > len(body):
        raise BadRequestError(
            f"Inference-Header-Content-Length {length} is outside the body ({len(body)} bytes)"
        )
    try:
        return orjson.loads(body[:length]), body[length:]
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"request header JSON is malformed: {exc}") from None


def attach_binary_inputs(request: InferRequest, tail: bytes) -> None:
    """Give each input with ``binary_data_size`` its numpy array cut from ``tail``."""
    offset = 0
    for tensor in request.inputs:
        size = tensor.parameters.get("binary_data_size")
        if size is None:
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(tail):
            raise BadRequestError(
                f"tensor '{tensor.name}': binary_data_size {size!r} runs past the "
                f"{len(tail)} bytes of binary data"
            )
        chunk = tail[offset : offset + size]
        offset += size
        tensor.set_data_from_numpy(_decode(tensor.name, tensor.datatype, tensor.shape, chunk))
        tensor.parameters.pop("binary_data_size", None)
    if offset != len(tail):
        raise BadRequestError(
            f"binary data has {len(tail) - offset} bytes that no input's binary_data_size covers"
        )


def _decode(name: str, datatype: str, shape: list[int], chunk: bytes) -> np.ndarray:
    count = int(np.prod(shape)) if shape else 1
    if datatype == "BYTES":
        items: list[bytes] = []
        pos = 0
        while pos < len(chunk):
            if pos + 4 > len(chunk):
                raise BadRequestError(f"tensor '{name}': truncated BYTES length prefix")
            (n,) = struct.unpack_from("<I", chunk, pos)
            items.append(chunk[pos + 4 : pos + 4 + n])
            pos += 4 + n
        if len(items) != count or pos != len(chunk):
            raise BadRequestError(
                f"tensor '{name}': shape {shape} needs {count} BYTES elements, got {len(items)}"
            )
        return np.array(items, dtype=np.object_).reshape(shape)
    dtype = np.dtype(DATATYPE_TO_NUMPY[datatype]).newbyteorder("<")
    if len(chunk) != count * dtype.itemsize:
        raise BadRequestError(
            f"tensor '{name}': shape {shape} of {datatype} needs {count * dtype.itemsize} bytes, "
            f"binary_data_size gives {len(chunk)}"
        )
    return np.frombuffer(chunk, dtype=dtype).reshape(shape)


def encode_array(array: np.ndarray) -> bytes:
    """Raw bytes of one tensor as the extension (and gRPC raw contents) define them."""
    if array.dtype.kind in ("O", "S", "U"):
        parts = []
        for item in array.reshape(-1):
            raw = item if isinstance(item, bytes) else str(item).encode("utf-8")
            parts.append(struct.pack("<I", len(raw)) + raw)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def wants_binary(request: InferRequest, output_name: str) -> bool:
    for wanted in request.request_outputs:
        if wanted.get("name") == output_name:
            params = wanted.get("parameters") or {}
            if "binary_data" in params:
                return bool(params["binary_data"])
    return bool(request.parameters.get("binary_data_output", False))


def response_json(response: InferResponse) -> dict[str, Any]:
    body: dict[str, Any] = {"model_name": response.model_name, "outputs": []}
    if response.model_version:
        body["model_version"] = response.model_version
    if response.id is not None:
        body["id"] = response.id
    if response.parameters:
        body["parameters"] = response.parameters
    return body


def encode_response(
    request: InferRequest, response: InferResponse
) -> tuple[bytes, dict[str, str] | None]:
    """The response body, and extra headers when any output went binary."""
    body = response_json(response)
    blobs: list[bytes] = []
    for out in response.outputs:
        array = out.as_numpy()
        item: dict[str, Any] = {
            "name": out.name,
            "shape": list(array.shape),
            "datatype": out.datatype,
        }
        params = dict(out.parameters)
        if wants_binary(request, out.name):
            raw = encode_array(array)
            params["binary_data_size"] = len(raw)
            blobs.append(raw)
        else:
            item["data"] = to_json_data(array)
        if params:
            item["parameters"] = params
        body["outputs"].append(item)
    head = orjson.dumps(body)
    if not blobs:
        return head, None
    return head + b"".join(blobs), {
        "Inference-Header-Content-Length": str(len(head)),
        "Content-Type": "application/octet-stream",
    }
