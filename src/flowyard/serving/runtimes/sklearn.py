"""scikit-learn runtime: ``model.joblib``, ``model.pkl`` or ``model.pickle`` (joblib or pickle).

Linear models predict through :mod:`sklearn_fast` (same arithmetic, no re-validation).

V2 metadata: one input ``input-0`` FP64 ``[-1, n_features_in_]``; one output ``output-0`` with
the dtype of the predictions (class labels or regression values), shape ``[-1]``.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from flowyard.errors import InvalidError
from flowyard.serving.infer_types import datatype_of
from flowyard.serving.model import ArrayModel
from flowyard.serving.runtimes.files import feature_shape, find_model_file
from flowyard.serving.runtimes.sklearn_fast import fast_predict, usable


class SKLearnModel(ArrayModel):
    platform = "sklearn"

    def load(self) -> bool:
        import joblib

        path = find_model_file(
            self.model_dir,
            "sklearn",
            ["model.joblib", "model.pkl", "model.pickle"],
            [".joblib", ".pkl", ".pickle"],
        )
        try:
            model: Any = joblib.load(path)
        except Exception as joblib_exc:
            try:
                with path.open("rb") as handle:
                    model = pickle.load(handle)
            except Exception:
                raise InvalidError(
                    f"{path.name} is not a joblib or pickle file of a scikit-learn model: "
                    f"{joblib_exc}"
                ) from joblib_exc
        if not callable(getattr(model, "predict", None)):
            raise InvalidError(
                f"{path.name} holds a {type(model).__name__}, not a model with predict()"
            )
        self._model = model
        n_features = getattr(model, "n_features_in_", None)
        self.inputs = [{"name": "input-0", "datatype": "FP64", "shape": feature_shape(n_features)}]
        classes = getattr(model, "classes_", None)
        out_type = datatype_of(np.asarray(classes)) if classes is not None else "FP64"
        self.outputs = [{"name": "output-0", "datatype": out_type, "shape": [-1]}]
        self._n_features = n_features
        self._fast = fast_predict(model)
        self.ready = True
        return True

    def predict_arrays(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = next(iter(inputs.values()))
        if self._fast is not None and usable(x, self._n_features):
            return {"output-0": self._fast(x)}
        return {"output-0": np.asarray(self._model.predict(x))}
