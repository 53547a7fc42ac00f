"""The Seldon Core prediction protocol (``/api/v0.1/predictions``, ``/api/v1.0/predictions``).

Request forms and what the model gets:

* ``{"data": {"names": [...], "ndarray": [[...], ...]}}`` -> rows, as V1 ``instances``
* ``{"data": {"names": [...], "tensor": {"shape": [...], "values": [...]}}}`` -> the reshaped
  tensor's rows, as V1 ``instances``
* ``{"jsonData": {...}}`` -> a custom model's ``predict`` gets the object itself; a built-in
  runtime treats it as a V1 request body
* ``{"strData": "..."}`` -> a custom model's ``predict`` gets the string

The answer mirrors the request's form (ndarray in -> ndarray out, tensor in -> tensor out) with
an empty ``meta``. Errors use Seldon's ``status`` object (rendered by the caller).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from flowyard.errors import BadRequestError
from flowyard.serving.engine import ModelHandle


async def seldon_predict(handle: ModelHandle, body: Any, headers: dict[str, str]) -> Any:
    if not isinstance(body, dict):
        raise BadRequestError("Seldon request must be a JSON object with data, jsonData or strData")
    if "data" in body:
        return await _data(handle, body["data"], headers)
    if "jsonData" in body:
        return {
            "jsonData": await _raw(handle, body["jsonData"], headers, json_data=True),
            "meta": {},
        }
    if "strData" in body:
        if not isinstance(body["strData"], str):
            raise BadRequestError("strData must be a string")
        return {
            "strData": str(await _raw(handle, body["strData"], headers, json_data=False)),
            "meta": {},
        }
    raise BadRequestError("Seldon request needs one of data (ndarray or tensor), jsonData, strData")


async def _data(handle: ModelHandle, data: Any, headers: dict[str, str]) -> Any:
    if not isinstance(data, dict):
        raise BadRequestError("'data' must be an object with ndarray or tensor")
    if "ndarray" in data:
        rows = data["ndarray"]
        result = await handle.infer_v1({"instances": rows}, headers)
        return {"data": {"names": names_for(result), "ndarray": result["predictions"]}, "meta": {}}
    if "tensor" in data:
        tensor = data["tensor"]
        if not isinstance(tensor, dict):
            raise BadRequestError("data.tensor must be an object with shape and values")
        shape, values = tensor.get("shape"), tensor.get("values")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise BadRequestError(f"data.tensor.shape {shape!r} must be a list of sizes")
        if not isinstance(values, list) or len(values) != math.prod(shape):
            count = len(values) if isinstance(values, list) else "no"
            raise BadRequestError(
                f"data.tensor.shape {shape} needs {math.prod(shape)} values, got {count}"
            )
        rows = np.asarray(values).reshape(shape).tolist()
        result = await handle.infer_v1({"instances": rows}, headers)
        out = np.asarray(result["predictions"])
        return {
            "data": {
                "names": names_for(result),
                "tensor": {"shape": list(out.shape), "values": out.reshape(-1).tolist()},
            },
            "meta": {},
        }
    raise BadRequestError("'data' needs ndarray or tensor (tftensor and binData are not supported)")


def names_for(result: Any) -> list[str]:
    predictions = np.asarray(result["predictions"])
    if predictions.ndim == 2:
        return [f"t:{i}" for i in range(predictions.shape[1])]
    return []


async def _raw(handle: ModelHandle, payload: Any, headers: dict[str, str], json_data: bool) -> Any:
    if handle.is_array_model:
        if json_data:
            return await handle.infer_v1(payload, headers)
        raise BadRequestError(
            f"model {handle.name} is a built-in runtime; strData needs a custom model"
        )
    return await handle.predict_raw(payload, headers)
