"""The model API: KServe's method names, so custom predictors move between the two unchanged.

A model has a ``name`` and a ``ready`` flag and these methods, each either sync or async:

* ``load()`` -> bool: read the model; set ``ready``. Called once, off the event loop.
* ``preprocess(payload, headers)`` -> payload
* ``predict(payload, headers)`` -> result
* ``postprocess(result, headers)`` -> result
* ``explain(payload, headers)`` -> result

``payload`` is the request body (a dict) on V1 and Seldon, an :class:`InferRequest` on V2.
``predict`` on V2 may return an :class:`InferResponse`, a dict of name -> array, or one array
(named ``output-0``). Sync methods run in a worker thread, so a slow ``predict`` never stalls
health probes or other requests.

Built-in runtimes subclass :class:`ArrayModel`: they only map named input arrays to named
output arrays and declare their tensor metadata; the server does the protocol work around it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Model:
    """Base for custom models (same surface as ``kserve.Model``).

    As in KServe, a model with a ``predictor_host`` (a transformer: the server's
    ``--predictor_host``) that does not override ``predict`` forwards the preprocessed payload
    to that predictor (V1 ``:predict`` for a dict, V2 ``/infer`` for an ``InferRequest``) and
    postprocesses the answer."""

    predictor_host: str | None = None
    predictor_timeout: float = 60.0

    def __init__(self, name: str) -> None:
        self.name = name
        self.ready = False

    def load(self) -> bool:
        self.ready = True
        return self.ready

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        return payload

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if self.predictor_host:
            return _forward(self, payload)
        raise NotImplementedError(f"model {self.name} does not implement predict")

    def postprocess(self, result: Any, headers: dict[str, str] | None = None) -> Any:
        return result

    def explain(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        raise NotImplementedError(f"model {self.name} does not implement explain")

    def get_input_types(self) -> list[dict[str, Any]]:
        """V2 metadata of the inputs: ``[{"name", "datatype", "shape"}]`` (-1 = any size)."""
        return []

    def get_output_types(self) -> list[dict[str, Any]]:
        return []


class ArrayModel(Model):
    """A model that maps named numpy inputs to named numpy outputs (built-in runtimes).

    ``predict_arrays`` is sync and thread-safe enough to run in a worker thread; the first
    declared input is the one V1 ``instances`` fill. ``platform`` is reported in V2 metadata.
    """

    platform = "unknown"

    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.inputs: list[dict[str, Any]] = []
        self.outputs: list[dict[str, Any]] = []

    def predict_arrays(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def get_input_types(self) -> list[dict[str, Any]]:
        return self.inputs

    def get_output_types(self) -> list[dict[str, Any]]:
        return self.outputs


def _forward(model: Model, payload: Any) -> Any:
    """The transformer's default predict: call the predictor (runs in a worker thread)."""
    import httpx
    import orjson

    base = f"http://{model.predictor_host}"
    if isinstance(payload, dict):
        url, body = f"{base}/v1/models/{model.name}:predict", orjson.dumps(payload)
    elif hasattr(payload, "to_rest"):
        url, body = f"{base}/v2/models/{model.name}/infer", orjson.dumps(payload.to_rest())
    else:
        raise TypeError(f"cannot forward a {type(payload).__name__} to the predictor")
    headers = {"content-type": "application/json"}
    answer = httpx.post(url, content=body, headers=headers, timeout=model.predictor_timeout)
    if answer.status_code >= 400:
        raise RuntimeError(
            f"predictor {model.predictor_host} answered {answer.status_code}: {answer.text[:500]}"
        )
    return orjson.loads(answer.content)
