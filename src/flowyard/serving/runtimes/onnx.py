"""ONNX runtime (onnxruntime, CPU): ``model.onnx``.

Metadata comes from the graph: every input and output with its element type and shape
(symbolic or unknown dimensions become -1). Inputs are cast to the declared element type.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flowyard.errors import BadRequestError, InvalidError
from flowyard.serving.model import ArrayModel
from flowyard.serving.runtimes.files import find_model_file

_ONNX_TYPES = {
    "tensor(float)": ("FP32", np.float32),
    "tensor(double)": ("FP64", np.float64),
    "tensor(float16)": ("FP16", np.float16),
    "tensor(int8)": ("INT8", np.int8),
    "tensor(int16)": ("INT16", np.int16),
    "tensor(int32)": ("INT32", np.int32),
    "tensor(int64)": ("INT64", np.int64),
    "tensor(uint8)": ("UINT8", np.uint8),
    "tensor(uint16)": ("UINT16", np.uint16),
    "tensor(uint32)": ("UINT32", np.uint32),
    "tensor(uint64)": ("UINT64", np.uint64),
    "tensor(bool)": ("BOOL", np.bool_),
    "tensor(string)": ("BYTES", np.object_),
}


def _meta(arg: Any) -> dict[str, Any]:
    datatype = _ONNX_TYPES.get(arg.type, ("BYTES", np.object_))[0]
    shape = [d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or [])]
    return {"name": arg.name, "datatype": datatype, "shape": shape}


class ONNXModel(ArrayModel):
    platform = "onnx_onnxv1"

    def load(self) -> bool:
        import onnxruntime as ort

        path = find_model_file(self.model_dir, "onnx", ["model.onnx"], [".onnx"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise InvalidError(f"{path.name} is not an ONNX model: {exc}") from exc
        self._session = session
        self._types = {
            a.name: _ONNX_TYPES.get(a.type, ("BYTES", None))[1] for a in session.get_inputs()
        }
        self.inputs = [_meta(a) for a in session.get_inputs()]
        self.outputs = [_meta(a) for a in session.get_outputs()]
        self._output_names = [o["name"] for o in self.outputs]
        self.ready = True
        return True

    def predict_arrays(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {}
        for name, array in inputs.items():
            if name not in self._types:
                raise BadRequestError(
                    f"model {self.name} has no input '{name}'; inputs: {', '.join(self._types)}"
                )
            dtype = self._types[name]
            feed[name] = array if dtype is None else np.asarray(array, dtype=dtype)
        results = self._session.run(self._output_names, feed)
        return {n: np.asarray(r) for n, r in zip(self._output_names, results, strict=True)}
