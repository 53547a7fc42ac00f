"""A validated fast path for scikit-learn linear models.

scikit-learn spends most of a one-row ``predict`` re-validating the input (dataframe
detection, array-API namespace checks, finiteness), often several times the arithmetic.
The server has already checked the input against the model's metadata (2-D, the right number
of features, float64), so for linear models whose ``predict`` is the library's own
(LogisticRegression, LinearSVC, SGDClassifier, Perceptron, ...) this module computes exactly
what scikit-learn computes - the same matmul, intercept, threshold/argmax and ``classes_``
look-up - without that re-validation. Any model or
input outside those conditions (sparse, non-float64, NaN/inf, overridden ``predict``) goes
through the model's own ``predict``. ``FLOWYARD_SKLEARN_FAST_PATH=0`` turns the fast path off.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


def fast_predict(model: Any) -> Predict | None:
    """A replacement for ``model.predict`` on validated float64 input, or None."""
    if os.environ.get("FLOWYARD_SKLEARN_FAST_PATH", "1") in ("0", "false", "False"):
        return None
    from sklearn.linear_model._base import LinearClassifierMixin

    cls = type(model)
    coef = getattr(model, "coef_", None)
    intercept = getattr(model, "intercept_", None)
    if not isinstance(coef, np.ndarray) or coef.dtype != np.float64:
        return None
    if not isinstance(intercept, (np.ndarray, float, int)):
        return None
    coef_t = coef.T if coef.ndim == 2 else coef
    if (
        isinstance(model, LinearClassifierMixin)
        and cls.predict is LinearClassifierMixin.predict
        and cls.decision_function is LinearClassifierMixin.decision_function
    ):
        classes = np.asarray(model.classes_)

        def classify(x: np.ndarray) -> np.ndarray:
            scores = x @ coef_t + intercept
            if scores.ndim > 1 and scores.shape[1] == 1:
                scores = scores.reshape(-1)
            indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
            return classes.take(indices, axis=0)

        return classify
    return None


def usable(x: np.ndarray, n_features: int | None) -> bool:
    """Input the fast path may take: dense 2-D float64 with the fitted width, all finite."""
    return (
        x.dtype == np.float64
        and x.ndim == 2
        and (n_features is None or x.shape[1] == n_features)
        and bool(np.isfinite(x).all())
    )
