"""Turning protocol payloads into the arrays a model expects, and batches back into answers.

Every check here raises BadRequestError naming the tensor, what the model expects (from its
V2 metadata) and what the request sent: that is the 400 "bad shape/datatype" answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from flowyard.errors import BadRequestError, InternalError
from flowyard.serving.infer_types import (
    DATATYPE_TO_NUMPY,
    NUMERIC_DATATYPES,
    InferRequest,
)


def check_shape_against(tensor: str, shape: tuple[int, ...], meta: Mapping[str, Any]) -> None:
    expected = meta.get("shape") or []
    if not expected:
        return
    if len(shape) != len(expected) or any(
        e != -1 and e != s for e, s in zip(expected, shape, strict=True)
    ):
        raise BadRequestError(
            f"tensor '{tensor}' has shape {list(shape)} but model expects {list(expected)} "
            f"(-1 = any size)"
        )


def v1_array(instances: Any, meta: Mapping[str, Any] | None) -> np.ndarray:
    """V1 ``instances`` as one array with the model's input dtype and shape checked."""
    if not isinstance(instances, list) or not instances:
        raise BadRequestError("V1 request needs a non-empty 'instances' list")
    datatype = (meta or {}).get("datatype")
    dtype = DATATYPE_TO_NUMPY[datatype] if datatype in NUMERIC_DATATYPES else None
    try:
        array = np.asarray(instances, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadRequestError(
            f"'instances' must be rows of equal length of {datatype or 'numbers'}: {exc}"
        ) from None
    if meta:
        check_shape_against("instances", array.shape, meta)
    return array


def v2_arrays(request: InferRequest, metas: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The request's inputs as arrays keyed by the model's input names.

    A model with one declared input takes the request's one input whatever its name (as
    KServe's runtimes do); a model with several matches them by name.
    """
    if len(metas) == 1:
        if len(request.inputs) != 1:
            raise BadRequestError(
                f"model expects 1 input ('{metas[0]['name']}'), request has {len(request.inputs)}"
            )
        tensor = request.inputs[0]
        return {metas[0]["name"]: _checked(tensor.name, tensor.datatype, tensor, metas[0])}
    if not metas:
        return {t.name: t.as_numpy() for t in request.inputs}
    by_name: dict[str, Any] = {t.name: t for t in request.inputs}
    arrays = {}
    for meta in metas:
        tensor = by_name.pop(meta["name"], None)
        if tensor is None:
            raise BadRequestError(f"request lacks input '{meta['name']}'")
        arrays[meta["name"]] = _checked(tensor.name, tensor.datatype, tensor, meta)
    if by_name:
        raise BadRequestError(f"model has no input named {', '.join(sorted(by_name))}")
    return arrays


def _checked(name: str, datatype: str, tensor: Any, meta: Mapping[str, Any]) -> np.ndarray:
    expected = meta.get("datatype")
    numeric = expected in NUMERIC_DATATYPES and datatype in NUMERIC_DATATYPES
    if expected and expected != datatype and not numeric:
        raise BadRequestError(
            f"tensor '{name}' has datatype {datatype} but model expects {expected}"
        )
    array: np.ndarray = tensor.as_numpy()
    check_shape_against(name, array.shape, meta)
    if numeric and expected != datatype:
        array = array.astype(DATATYPE_TO_NUMPY[str(expected)])
    return array


def batch_key(arrays: Mapping[str, np.ndarray]) -> tuple[Any, ...]:
    """Requests merge only when every input has the same name, dtype and row shape."""
    return tuple((n, a.dtype.str, a.shape[1:]) for n, a in arrays.items())


def rows_of(arrays: Mapping[str, np.ndarray]) -> int:
    first = next(iter(arrays.values()))
    return int(first.shape[0]) if first.ndim else 1


def merge_arrays(items: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(items) == 1:
        return items[0]
    return {name: np.concatenate([i[name] for i in items]) for name in items[0]}


def split_arrays(result: Mapping[str, np.ndarray], sizes: list[int]) -> list[dict[str, np.ndarray]]:
    """Cut every output along its first axis back into the requests' row counts."""
    if len(sizes) == 1:
        return [dict(result)]
    total = sum(sizes)
    offsets = np.cumsum(sizes)[:-1]
    parts: list[dict[str, np.ndarray]] = [{} for _ in sizes]
    for name, array in result.items():
        array = np.asarray(array)
        if array.ndim == 0 or array.shape[0] != total:
            raise InternalError(
                f"output '{name}' has shape {list(array.shape)}: a batch of {total} rows needs "
                f"{total} rows out to split the answers back"
            )
        for part, piece in zip(parts, np.split(array, offsets), strict=True):
            part[name] = piece
    return parts


def split_list(result: Any, sizes: list[int], field: str = "predictions") -> list[Any]:
    """Split a V1 ``{"predictions": [...]}`` answer of a merged call by instance counts."""
    if len(sizes) == 1:
        return [result]
    predictions = result.get(field) if isinstance(result, Mapping) else None
    if predictions is None or len(predictions) != sum(sizes):
        raise InternalError(
            f"batched V1 call must return '{field}' with one entry per instance ({sum(sizes)})"
        )
    out, start = [], 0
    for size in sizes:
        out.append({**result, field: list(predictions[start : start + size])})
        start += size
    return out
