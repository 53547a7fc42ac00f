"""PyTorch runtime: a TorchScript module saved as ``model.pt`` (torch is an optional extra).

The module is called with one FP32 tensor (V1 ``instances`` or the first V2 input) under
``torch.inference_mode()``; a tuple result becomes ``output-0``, ``output-1``, ...
TorchScript keeps no tensor shapes, so metadata reports ``[-1, -1]`` FP32 in and out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flowyard.errors import InvalidError
from flowyard.serving.model import ArrayModel
from flowyard.serving.runtimes.files import find_model_file


class TorchScriptModel(ArrayModel):
    platform = "pytorch_torchscript"

    def load(self) -> bool:
        import torch

        path = find_model_file(
            self.model_dir, "pytorch", ["model.pt", "model.pth"], [".pt", ".pth"]
        )
        try:
            jit_load: Any = torch.jit.load  # untyped in torch's stubs
            module = jit_load(str(path), map_location="cpu")
        except Exception as exc:
            raise InvalidError(f"{path.name} is not a TorchScript model: {exc}") from exc
        module.eval()
        self._torch = torch
        self._module = module
        self.inputs = [{"name": "input-0", "datatype": "FP32", "shape": [-1, -1]}]
        self.outputs = [{"name": "output-0", "datatype": "FP32", "shape": [-1, -1]}]
        self.ready = True
        return True

    def predict_arrays(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(next(iter(inputs.values())), dtype=np.float32))
        with torch.inference_mode():
            result: Any = self._module(x)
        if isinstance(result, (tuple, list)):
            return {f"output-{i}": r.numpy() for i, r in enumerate(result)}
        return {"output-0": result.numpy()}
