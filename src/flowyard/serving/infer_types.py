"""Tensors of the Open Inference Protocol (V2) and their numpy form.

``InferInput``/``InferRequest``/``InferOutput``/``InferResponse`` carry the same attribute and
method names as KServe's Python classes (``name``, ``shape``, ``datatype``, ``data``,
``parameters``, ``as_numpy()``, ``set_data_from_numpy()``, ``inputs``, ``outputs``, ``id``), so
a custom model written against KServe's V2 types runs here unchanged.

Contract: every conversion from client data raises :class:`flowyard.errors.BadRequestError`
naming the tensor and what is wrong (unknown datatype, shape that does not match the element
count, values that do not convert); the server turns it into a 400 answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from flowyard.errors import BadRequestError

DATATYPE_TO_NUMPY: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}

NUMERIC_DATATYPES = frozenset(DATATYPE_TO_NUMPY) - {"BYTES", "BOOL"}


def datatype_of(array: np.ndarray) -> str:
    """The V2 datatype name for a numpy array (strings and objects are BYTES)."""
    kind = array.dtype.kind
    if kind in ("U", "S", "O"):
        return "BYTES"
    for name, np_type in DATATYPE_TO_NUMPY.items():
        if np_type is not np.object_ and array.dtype == np.dtype(np_type):
            return name
    raise BadRequestError(f"numpy dtype {array.dtype} has no Open Inference Protocol datatype")


def check_datatype(tensor: str, datatype: Any) -> str:
    if not isinstance(datatype, str) or datatype not in DATATYPE_TO_NUMPY:
        raise BadRequestError(
            f"tensor '{tensor}': datatype {datatype!r} is not one of "
            f"{', '.join(sorted(DATATYPE_TO_NUMPY))}"
        )
    return datatype


def check_shape(tensor: str, shape: Any) -> list[int]:
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise BadRequestError(
            f"tensor '{tensor}': shape {shape!r} must be a list of non-negative integers"
        )
    return shape


def to_numpy(tensor: str, datatype: str, shape: list[int], data: Any) -> np.ndarray:
    """Client JSON data (flat or nested, row-major) as an array of ``shape``."""
    np_type = DATATYPE_TO_NUMPY[datatype]
    try:
        if datatype == "BYTES":
            array = np.array(data, dtype=np.object_)
        else:
            array = np.asarray(data, dtype=np_type)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadRequestError(
            f"tensor '{tensor}': data does not convert to {datatype}: {exc}"
        ) from None
    expected = math.prod(shape)
    if array.size != expected:
        raise BadRequestError(
            f"tensor '{tensor}': shape {shape} needs {expected} elements but data has {array.size}"
        )
    return array.reshape(shape)


def to_json_data(array: np.ndarray) -> list[Any]:
    """Flat row-major list for the JSON ``data`` field (bytes become UTF-8 text)."""
    flat = array.reshape(-1)
    if flat.dtype.kind in ("O", "S"):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in flat]
    values: list[Any] = flat.tolist()
    return values


class InferInput:
    """One input tensor of an inference request."""

    def __init__(
        self,
        name: str,
        shape: list[int],
        datatype: str,
        data: Any = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.shape = list(shape)
        self.datatype = datatype
        self.data = data
        self.parameters = parameters or {}
        self._array: np.ndarray | None = data if isinstance(data, np.ndarray) else None

    def as_numpy(self) -> np.ndarray:
        if self._array is None:
            self._array = to_numpy(self.name, self.datatype, self.shape, self.data)
        return self._array

    def set_data_from_numpy(self, array: np.ndarray, binary_data: bool = False) -> None:
        self._array = array
        self.data = array
        self.shape = list(array.shape)
        self.datatype = datatype_of(array)

    def __repr__(self) -> str:
        return f"InferInput(name={self.name!r}, shape={self.shape}, datatype={self.datatype!r})"


class InferOutput(InferInput):
    """One output tensor of an inference response."""


class InferRequest:
    """A V2 inference request: ``inputs``, optional ``id``, ``parameters`` and requested
    ``request_outputs`` (names the client asked for; empty means all)."""

    def __init__(
        self,
        model_name: str,
        infer_inputs: list[InferInput],
        request_id: str | None = None,
        parameters: dict[str, Any] | None = None,
        request_outputs: list[dict[str, Any]] | None = None,
    ) -> None:
        self.model_name = model_name
        self.inputs = infer_inputs
        self.id = request_id
        self.parameters = parameters or {}
        self.request_outputs = request_outputs or []

    def get_input_by_name(self, name: str) -> InferInput | None:
        return next((i for i in self.inputs if i.name == name), None)

    def to_rest(self) -> dict[str, Any]:
        """The V2 REST body of this request (what a transformer sends on to its predictor)."""
        inputs = []
        for item in self.inputs:
            array = item.as_numpy()
            data = [v.decode() if isinstance(v, bytes) else v for v in array.reshape(-1).tolist()]
            inputs.append(
                {
                    "name": item.name,
                    "shape": list(array.shape),
                    "datatype": item.datatype,
                    "data": data,
                }
            )
        body: dict[str, Any] = {"inputs": inputs}
        if self.id is not None:
            body["id"] = self.id
        if self.parameters:
            body["parameters"] = self.parameters
        if self.request_outputs:
            body["outputs"] = self.request_outputs
        return body

    @classmethod
    def from_arrays(cls, model_name: str, arrays: Mapping[str, np.ndarray]) -> InferRequest:
        inputs = [InferInput(n, list(a.shape), datatype_of(a), a) for n, a in arrays.items()]
        return cls(model_name, inputs)

    @classmethod
    def from_rest(cls, model_name: str, body: Any) -> InferRequest:
        """Parse and check a REST request body (data still lazy: converted by ``as_numpy``)."""
        if not isinstance(body, Mapping):
            raise BadRequestError("inference request must be a JSON object with 'inputs'")
        raw_inputs = body.get("inputs")
        if not isinstance(raw_inputs, list) or not raw_inputs:
            raise BadRequestError("inference request needs a non-empty 'inputs' list")
        inputs = [_input_from_rest(i, item) for i, item in enumerate(raw_inputs)]
        outputs = body.get("outputs") or []
        if not isinstance(outputs, list) or not all(
            isinstance(o, Mapping) and isinstance(o.get("name"), str) for o in outputs
        ):
            raise BadRequestError("'outputs' must be a list of objects with a 'name'")
        params = body.get("parameters") or {}
        if not isinstance(params, Mapping):
            raise BadRequestError("'parameters' must be an object")
        rid = body.get("id")
        return cls(model_name, inputs, None if rid is None else str(rid), dict(params), outputs)


def _input_from_rest(index: int, item: Any) -> InferInput:
    if not isinstance(item, Mapping):
        raise BadRequestError(f"inputs[{index}] must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequestError(f"inputs[{index}] needs a 'name'")
    datatype = check_datatype(name, item.get("datatype"))
    shape = check_shape(name, item.get("shape"))
    params = item.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise BadRequestError(f"tensor '{name}': 'parameters' must be an object")
    if "data" not in item and "binary_data_size" not in params:
        raise BadRequestError(f"tensor '{name}' has no 'data'")
    return InferInput(name, shape, datatype, item.get("data"), dict(params))


class InferResponse:
    """A V2 inference response."""

    def __init__(
        self,
        response_id: str | None,
        model_name: str,
        infer_outputs: list[InferOutput],
        model_version: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.id = response_id
        self.model_name = model_name
        self.model_version = model_version
        self.outputs = infer_outputs
        self.parameters = parameters or {}

    @classmethod
    def from_arrays(
        cls, request: InferRequest, model_name: str, arrays: Mapping[str, np.ndarray]
    ) -> InferResponse:
        outputs = []
        for name, value in arrays.items():
            array = np.asarray(value)
            outputs.append(InferOutput(name, list(array.shape), datatype_of(array), array))
        return cls(request.id, model_name, outputs)


def outputs_as_arrays(outputs: Sequence[InferOutput]) -> dict[str, np.ndarray]:
    return {o.name: o.as_numpy() for o in outputs}
