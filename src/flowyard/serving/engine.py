"""The served model and everything between a parsed request and the model's methods.

Contract:

* ``load()`` runs the model's ``load`` in a thread; ``state`` goes Loading -> Loaded or
  FailedToLoad (``failure`` says why). Until Loaded every inference raises UnavailableError.
* ``infer_v1(body)`` -> V1 answer dict; ``infer_v2(request)`` -> :class:`InferResponse`;
  ``explain(body)``. Sync model code always runs in the worker pool, never on the event loop.
* With a batcher, concurrent requests merge into one model call (V1 and V2) and each caller
  gets exactly its own rows back.
* ``limit`` (containerConcurrency) bounds how many requests are inside the model at once;
  the rest wait in arrival order.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from flowyard.errors import (
    BadRequestError,
    FlowyardError,
    InternalError,
    UnavailableError,
)
from flowyard.serving import arrays as arr
from flowyard.serving.batcher import Batcher
from flowyard.serving.infer_types import InferRequest, InferResponse, outputs_as_arrays
from flowyard.serving.model import ArrayModel

LOADING, LOADED, FAILED = "Loading", "Loaded", "FailedToLoad"


class NotImplementedByModel(FlowyardError):
    code = 501
    reason = "NotImplemented"


class ModelHandle:
    def __init__(
        self,
        name: str,
        factory: Callable[[], Any],
        *,
        batch_max_size: int = 0,
        batch_max_latency_ms: float = 0.0,
        container_concurrency: int = 0,
        threads: int = 4,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """``factory`` (run in a worker thread by ``load``) fetches the files and returns the
        unloaded model object; ``load`` then calls the model's own ``load``."""
        self.name = name
        self._factory = factory
        self.model: Any = None
        self.state = LOADING
        self.failure = ""
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="predict")
        self._array_model = False
        self._async: dict[str, bool] = {}
        self._kserve_types: _KServeTypes | None = None
        self.limit = asyncio.Semaphore(container_concurrency) if container_concurrency else None
        self._batchers: dict[str, Batcher] = {}
        if batch_max_size > 0:
            latency = batch_max_latency_ms / 1000.0
            self._batchers = {
                "v1": Batcher(batch_max_size, latency, self._run_v1_batch, on_batch),
                "v2": Batcher(batch_max_size, latency, self._run_v2_batch, on_batch),
            }

    def _adopt(self, model: Any) -> None:
        self._array_model = isinstance(model, ArrayModel)
        self._async = {
            m: inspect.iscoroutinefunction(getattr(model, m, None))
            for m in ("preprocess", "predict", "postprocess", "explain")
        }
        self._kserve_types = _kserve_types(model)
        self.model = model

    # -- lifecycle ---------------------------------------------------------------------------
    async def load(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(self._pool, self._factory)
            self._adopt(model)
            ok = await self._load_call(model)
            if ok is False:
                raise InternalError(f"model {self.name}: load() returned False")
            self.model.ready = True
            self.state = LOADED
        except Exception as exc:
            self.state = FAILED
            self.failure = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            print(f"model {self.name} failed to load: {self.failure}", file=sys.stderr, flush=True)

    async def _load_call(self, model: Any) -> Any:
        if inspect.iscoroutinefunction(model.load):
            return await model.load()
        return await asyncio.get_running_loop().run_in_executor(self._pool, model.load)

    @property
    def is_array_model(self) -> bool:
        return self._array_model

    async def predict_raw(self, payload: Any, headers: dict[str, str]) -> Any:
        """The model's pipeline on an arbitrary payload (Seldon jsonData/strData)."""
        self.check_ready()
        return await self._pipeline(payload, headers)

    @property
    def ready(self) -> bool:
        return self.state == LOADED

    def check_ready(self) -> None:
        if self.state != LOADED:
            why = f": {self.failure}" if self.failure else " yet"
            raise UnavailableError(f"model {self.name} is not ready{why}")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def metadata(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return list(self.model.get_input_types() or []), list(self.model.get_output_types() or [])

    # -- running model code -----------------------------------------------------------------
    async def _call(self, method: str, *args: Any) -> Any:
        fn = getattr(self.model, method)
        if self._async[method]:
            return await fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _pipeline(self, payload: Any, headers: dict[str, str]) -> Any:
        """preprocess -> predict -> postprocess; one thread hop when all three are sync."""
        if not any(self._async[m] for m in ("preprocess", "predict", "postprocess")):
            m = self.model

            def chain() -> Any:
                return m.postprocess(m.predict(m.preprocess(payload, headers), headers), headers)

            return await asyncio.get_running_loop().run_in_executor(self._pool, chain)
        payload = await self._call("preprocess", payload, headers)
        result = await self._call("predict", payload, headers)
        return await self._call("postprocess", result, headers)

    async def _predict_arrays(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        loop = asyncio.get_running_loop()
        try:
            result: dict[str, np.ndarray] = await loop.run_in_executor(
                self._pool, self.model.predict_arrays, arrays
            )
        except (ValueError, TypeError) as exc:  # the libraries' way of rejecting the input
            raise BadRequestError(f"model {self.name} rejected the input: {exc}") from exc
        return result

    # -- V1 ---------------------------------------------------------------------------------
    async def infer_v1(self, body: Any, headers: dict[str, str]) -> Any:
        self.check_ready()
        if not isinstance(body, dict):
            raise BadRequestError("V1 request must be a JSON object with 'instances'")
        if self._array_model:
            instances = body.get("instances", body.get("inputs"))
            inputs, outputs = self.model.inputs, self.model.outputs
            x = arr.v1_array(instances, inputs[0] if len(inputs) == 1 else None)
            name = inputs[0]["name"] if inputs else "input-0"
            result = await self._arrays({name: x}, "v1")
            first = outputs[0]["name"] if outputs else next(iter(result))
            return {"predictions": result[first]}
        if "v1" in self._batchers and isinstance(body.get("instances"), list):
            return await self._batchers["v1"].submit("v1", body, len(body["instances"]) or 1)
        return await self._pipeline(body, headers)

    async def _arrays(self, arrays: dict[str, np.ndarray], proto: str) -> dict[str, np.ndarray]:
        batcher = self._batchers.get(proto)
        if batcher is None:
            return await self._predict_arrays(arrays)
        result: dict[str, np.ndarray] = await batcher.submit(
            arr.batch_key(arrays), arrays, arr.rows_of(arrays)
        )
        return result

    async def _run_v1_batch(self, items: list[Any]) -> list[Any]:
        if self._array_model:
            return await self._run_arrays_batch(items)
        sizes = [len(i["instances"]) for i in items]
        merged = {**items[0], "instances": [x for i in items for x in i["instances"]]}
        return arr.split_list(await self._pipeline(merged, {}), sizes)

    async def _run_arrays_batch(self, items: list[dict[str, np.ndarray]]) -> list[Any]:
        sizes = [arr.rows_of(i) for i in items]
        result = await self._predict_arrays(arr.merge_arrays(items))
        return arr.split_arrays(result, sizes)

    # -- V2 ---------------------------------------------------------------------------------
    async def infer_v2(self, request: InferRequest, headers: dict[str, str]) -> InferResponse:
        self.check_ready()
        if self._array_model:
            arrays = arr.v2_arrays(request, self.model.inputs)
            out = await self._arrays(arrays, "v2")
        elif "v2" in self._batchers:
            arrays = {t.name: t.as_numpy() for t in request.inputs}
            out = await self._batchers["v2"].submit(
                arr.batch_key(arrays), arrays, arr.rows_of(arrays)
            )
        else:
            payload = self._kserve_types.request(request) if self._kserve_types else request
            out = to_arrays(await self._pipeline(payload, headers))
        return InferResponse.from_arrays(request, self.name, select_outputs(request, out))

    async def _run_v2_batch(self, items: list[dict[str, np.ndarray]]) -> list[Any]:
        if self._array_model:
            return await self._run_arrays_batch(items)
        sizes = [arr.rows_of(i) for i in items]
        merged = InferRequest.from_arrays(self.name, arr.merge_arrays(items))
        payload = self._kserve_types.request(merged) if self._kserve_types else merged
        return arr.split_arrays(to_arrays(await self._pipeline(payload, {})), sizes)

    # -- explain ----------------------------------------------------------------------------
    async def explain(self, body: Any, headers: dict[str, str]) -> Any:
        self.check_ready()
        if self._array_model or type(self.model).explain is _base_explain():
            raise NotImplementedByModel(f"model {self.name} has no explainer")
        try:
            return await self._call("explain", body, headers)
        except NotImplementedError as exc:
            raise NotImplementedByModel(str(exc) or f"model {self.name} has no explainer") from exc


def _base_explain() -> Any:
    from flowyard.serving.model import Model

    return Model.explain


def select_outputs(request: InferRequest, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Only the outputs the request named (all when it named none)."""
    if not request.request_outputs:
        return out
    chosen = {}
    for wanted in request.request_outputs:
        name = wanted["name"]
        if name not in out:
            raise BadRequestError(
                f"requested output '{name}' does not exist; outputs: {', '.join(out)}"
            )
        chosen[name] = out[name]
    return chosen


def to_arrays(result: Any) -> dict[str, np.ndarray]:
    """A custom model's V2 result (InferResponse-like, dict of arrays, REST dict, or one array)
    as named arrays."""
    if isinstance(result, dict) and isinstance(result.get("outputs"), list):
        request = InferRequest.from_rest("", {"inputs": result["outputs"]})
        return {t.name: t.as_numpy() for t in request.inputs}
    if isinstance(result, dict):
        return {str(k): np.asarray(v) for k, v in result.items()}
    if hasattr(result, "outputs"):
        return outputs_as_arrays(result.outputs)
    if isinstance(result, (np.ndarray, list, tuple)):
        return {"output-0": np.asarray(result)}
    raise InternalError(
        f"predict returned {type(result).__name__}; a V2 model must return an InferResponse, "
        f"a dict of arrays or an array"
    )


class _KServeTypes:
    """Converts flowyard V2 requests into ``kserve.InferRequest`` for ``kserve.Model``
    subclasses, so their ``payload.inputs[0].as_numpy()`` code sees KServe's own classes."""

    def __init__(self, kserve: Any) -> None:
        self._k = kserve

    def request(self, request: InferRequest) -> Any:
        inputs = []
        for tensor in request.inputs:
            item = self._k.InferInput(tensor.name, tensor.shape, tensor.datatype)
            item.set_data_from_numpy(tensor.as_numpy(), binary_data=False)
            inputs.append(item)
        return self._k.InferRequest(
            model_name=request.model_name,
            infer_inputs=inputs,
            request_id=request.id,
            parameters=request.parameters,
        )


def _kserve_types(model: Any) -> _KServeTypes | None:
    if not any(c.__module__.split(".")[0] == "kserve" for c in type(model).__mro__):
        return None
    try:
        import kserve
    except ImportError:
        return None
    return _KServeTypes(kserve) if isinstance(model, kserve.Model) else None
