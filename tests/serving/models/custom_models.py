"""Custom models loaded by the test servers (``--runtime custom --model-class
custom_models:NAME`` with ``--model-dir`` pointing here)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from flowyard.serving import InferRequest, InferResponse, Model
from flowyard.serving.infer_types import InferOutput


class BatchRecorder(Model):
    """Echoes each row's first value next to the size of the batch it was predicted in."""

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            x = payload.inputs[0].as_numpy()
            sizes = np.full((x.shape[0], 1), x.shape[0], dtype=x.dtype)
            out = np.concatenate([x[:, :1], sizes], axis=1)
            return InferResponse(payload.id, self.name, [_output("echo", out)])
        rows = payload["instances"]
        return {"predictions": [[row[0], len(rows)] for row in rows]}


def _output(name: str, array: np.ndarray) -> InferOutput:
    out = InferOutput(name, list(array.shape), "FP64")
    out.set_data_from_numpy(array)
    return out


class SlowPredict(Model):
    """A sync predict that blocks its thread for 2 s (health must still answer)."""

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        time.sleep(2.0)
        return {"predictions": [len(payload["instances"])]}


class SlowLoad(Model):
    """Takes 4 s to load: inference answers 503 until then."""

    def load(self) -> bool:
        time.sleep(4.0)
        self.ready = True
        return True

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        return {"predictions": payload["instances"]}


class BrokenLoad(Model):
    def load(self) -> bool:
        raise RuntimeError("weights file is corrupt")


class InFlight(Model):
    """Async predict that reports the most requests it ever saw inside it at once."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.current = 0
        self.most = 0

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        self.current += 1
        self.most = max(self.most, self.current)
        await asyncio.sleep(0.3)
        self.current -= 1
        return {"predictions": [self.most]}


class Pipeline(Model):
    """Async pre/postprocess around a sync predict, an explainer, and Seldon raw payloads."""

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, dict) and "instances" in payload:
            return {"instances": [[v * 2 for v in row] for row in payload["instances"]]}
        return payload

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, str):
            return payload.upper()
        if isinstance(payload, InferRequest):
            return {"doubled": payload.inputs[0].as_numpy() * 2}
        if "instances" not in payload:
            return {"echo": payload, "saw_header": (headers or {}).get("x-test", "")}
        return {"predictions": [sum(row) for row in payload["instances"]]}

    async def postprocess(self, result: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(result, dict) and "predictions" in result:
            return {**result, "postprocessed": True}
        return result

    def explain(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        return {"explanations": [[1.0 for _ in row] for row in payload["instances"]]}


class RowSum(Model):
    """A predictor: the sum of each row, and which process answered."""

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        import os

        return {"predictions": [sum(row) for row in payload["instances"]], "pid": os.getpid()}


class Doubler(Model):
    """A KServe-style transformer: no predict of its own (the base class forwards to the
    predictor given by --predictor_host); preprocess doubles every value, postprocess marks
    the answer."""

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        return {"instances": [[v * 2 for v in row] for row in payload["instances"]]}

    def postprocess(self, result: Any, headers: dict[str, str] | None = None) -> Any:
        return {**result, "transformed_by": self.name}


class Sleepy(Model):
    """0.3 s per request without blocking the loop: concurrent load for the autoscaler."""

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        import os

        await asyncio.sleep(0.3)
        return {"predictions": [os.getpid()]}


class AddOne(Model):
    """Adds 1 to every value and says which model answered (graph tests)."""

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        rows = [[v + 1 for v in row] for row in payload["instances"]]
        return {"predictions": rows, "model": self.name}
