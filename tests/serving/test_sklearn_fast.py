"""The sklearn linear fast path gives exactly scikit-learn's answers, or steps aside."""

from __future__ import annotations

import numpy as np
import pytest

from flowyard.errors import BadRequestError
from flowyard.serving.runtimes.sklearn_fast import fast_predict, usable


def _models() -> list[tuple[object, np.ndarray]]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression, Perceptron, SGDClassifier
    from sklearn.svm import LinearSVC

    x, y = load_iris(return_X_y=True)
    binary = y < 2
    named = np.array(["setosa", "versicolor", "virginica"])[y]
    return [
        (LogisticRegression(max_iter=1000).fit(x, y), x),
        (LogisticRegression().fit(x[binary], y[binary]), x),
        (LogisticRegression(max_iter=1000).fit(x, named), x),
        (LinearSVC().fit(x, y), x),
        (Perceptron().fit(x, y), x),
        (SGDClassifier(random_state=0).fit(x, y), x),
    ]


def test_fast_path_equals_sklearn_predict() -> None:
    for model, x in _models():
        fast = fast_predict(model)
        assert fast is not None, model
        assert np.array_equal(fast(x), model.predict(x)), model  # type: ignore[attr-defined]
        assert np.array_equal(fast(x[:1]), model.predict(x[:1]))  # type: ignore[attr-defined]


def test_fast_path_steps_aside() -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import RidgeClassifier
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True)
    assert fast_predict(DecisionTreeClassifier().fit(x, y)) is None
    assert fast_predict(RidgeClassifier().fit(x, y)) is None  # overrides predict
    assert not usable(np.array([[1.0, np.nan, 2.0, 3.0]]), 4)
    assert not usable(np.array([[1.0, 2.0, 3.0]]), 4)
    assert not usable(np.array([[1, 2, 3, 4]], dtype=np.int64), 4)
    assert usable(np.array([[1.0, 2.0, 3.0, 4.0]]), 4)


def test_fast_path_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = _models()[0]
    monkeypatch.setenv("FLOWYARD_SKLEARN_FAST_PATH", "0")
    assert fast_predict(model) is None


def test_nan_input_is_still_rejected_by_sklearn(iris_dir: object) -> None:
    import asyncio

    from flowyard.serving.engine import ModelHandle
    from flowyard.serving.runtimes import create_model

    handle = ModelHandle("m", lambda: create_model("sklearn", "m", str(iris_dir)))

    async def scenario() -> None:
        await handle.load()
        assert handle.ready
        with pytest.raises(BadRequestError, match="NaN"):
            await handle.infer_v1({"instances": [[1.0, float("nan"), 2.0, 3.0]]}, {})
        handle.close()

    asyncio.run(scenario())
