"""LightGBM runtime: a Booster saved as ``model.bst`` or ``model.txt``.

Metadata: input ``input-0`` FP64 ``[-1, num_feature]``; output ``output-0`` FP64 whose shape is
learned by predicting one zero row at load (``[-1]``, or ``[-1, k]`` for multiclass).
"""

from __future__ import annotations

import numpy as np

from flowyard.errors import InvalidError
from flowyard.serving.model import ArrayModel
from flowyard.serving.runtimes.files import feature_shape, find_model_file


class LightGBMModel(ArrayModel):
    platform = "lightgbm"

    def load(self) -> bool:
        import lightgbm as lgb

        path = find_model_file(
            self.model_dir, "lightgbm", ["model.bst", "model.txt"], [".bst", ".txt"]
        )
        try:
            booster = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as exc:
            raise InvalidError(f"{path.name} is not a LightGBM model: {exc}") from exc
        self._booster = booster
        n = booster.num_feature()
        self.inputs = [{"name": "input-0", "datatype": "FP64", "shape": feature_shape(n)}]
        probe = self.predict_arrays({"input-0": np.zeros((1, n))})["output-0"]
        self.outputs = [{"name": "output-0", "datatype": "FP64", "shape": [-1, *probe.shape[1:]]}]
        self.ready = True
        return True

    def predict_arrays(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = np.asarray(next(iter(inputs.values())), dtype=np.float64)
        return {"output-0": np.asarray(self._booster.predict(x, num_threads=1))}
