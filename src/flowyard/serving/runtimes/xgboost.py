"""XGBoost runtime: a Booster saved as ``model.bst``, ``model.json`` or ``model.ubj``.

Metadata: input ``input-0`` FP32 ``[-1, num_features]``; output ``output-0`` FP32 whose shape
is learned by predicting one zero row at load (``[-1]``, or ``[-1, k]`` for softprob).
"""

from __future__ import annotations

import numpy as np

from flowyard.errors import InvalidError
from flowyard.serving.model import ArrayModel
from flowyard.serving.runtimes.files import feature_shape, find_model_file


class XGBoostModel(ArrayModel):
    platform = "xgboost"

    def load(self) -> bool:
        import xgboost as xgb

        path = find_model_file(
            self.model_dir,
            "xgboost",
            ["model.bst", "model.json", "model.ubj"],
            [".bst", ".json", ".ubj"],
        )
        booster = xgb.Booster(params={"nthread": 1})
        try:
            booster.load_model(str(path))
        except xgb.core.XGBoostError as exc:
            raise InvalidError(f"{path.name} is not an XGBoost model: {exc}") from exc
        self._booster = booster
        n = booster.num_features()
        self.inputs = [{"name": "input-0", "datatype": "FP32", "shape": feature_shape(n)}]
        probe = self.predict_arrays({"input-0": np.zeros((1, n), dtype=np.float32)})["output-0"]
        self.outputs = [{"name": "output-0", "datatype": "FP32", "shape": [-1, *probe.shape[1:]]}]
        self.ready = True
        return True

    def predict_arrays(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = np.asarray(next(iter(inputs.values())), dtype=np.float32)
        return {"output-0": np.asarray(self._booster.inplace_predict(x), dtype=np.float32)}
