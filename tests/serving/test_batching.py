"""The batcher merges concurrent V1 and V2 requests and splits the answers back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from flowyard.serving.batcher import Batcher
from tests.serving.conftest import MODELS_DIR, Server

BATCH = ["--batch-max-size", "8", "--batch-max-latency-ms", "2000"]


@pytest.fixture(scope="module")
def recorder(start_server: Any) -> Server:
    server: Server = start_server(
        [
            "--model-name",
            "rec",
            "--model-dir",
            str(MODELS_DIR),
            "--runtime",
            "custom",
            "--model-class",
            "custom_models:BatchRecorder",
            *BATCH,
        ]
    )
    return server.wait_loaded()


async def _concurrent(url: str, path: str, bodies: list[Any]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return list(await asyncio.gather(*(client.post(path, json=b) for b in bodies)))


def test_v1_requests_are_merged_and_split(recorder: Server) -> None:
    bodies = [{"instances": [[float(i)]]} for i in range(8)]
    responses = asyncio.run(_concurrent(recorder.url, "/v1/models/rec:predict", bodies))
    for i, resp in enumerate(responses):
        assert resp.status_code == 200, resp.text
        ((echo, batch_size),) = resp.json()["predictions"]
        assert echo == float(i)  # each caller got its own row back
        assert batch_size == 8  # ... predicted in one merged call


def test_v1_multi_row_requests_keep_their_rows(recorder: Server) -> None:
    bodies = [
        {"instances": [[1.0], [2.0], [3.0]]},
        {"instances": [[4.0]]},
        {"instances": [[5.0], [6.0], [7.0], [8.0]]},
    ]
    responses = asyncio.run(_concurrent(recorder.url, "/v1/models/rec:predict", bodies))
    echoes = [[row[0] for row in r.json()["predictions"]] for r in responses]
    assert echoes == [[1.0, 2.0, 3.0], [4.0], [5.0, 6.0, 7.0, 8.0]]
    assert {row[1] for r in responses for row in r.json()["predictions"]} == {8}


def test_v2_requests_are_merged_and_split(recorder: Server) -> None:
    bodies = [
        {
            "id": str(i),
            "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [float(i), 0.0]}],
        }
        for i in range(8)
    ]
    responses = asyncio.run(_concurrent(recorder.url, "/v2/models/rec/infer", bodies))
    for i, resp in enumerate(responses):
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["id"] == str(i)
        assert body["outputs"][0]["shape"] == [1, 2]
        assert body["outputs"][0]["data"] == [float(i), 8.0]


def test_sklearn_batching_gives_unbatched_answers(
    start_server: Any, iris_dir: Path, iris_data: Any
) -> None:
    import joblib

    x, _ = iris_data
    rows = x[::10][:12]
    expected = joblib.load(iris_dir / "model.joblib").predict(rows).tolist()
    server: Server = start_server(
        [
            "--model-name",
            "iris",
            "--model-dir",
            str(iris_dir),
            "--runtime",
            "sklearn",
            "--batch-max-size",
            "12",
            "--batch-max-latency-ms",
            "2000",
        ]
    ).wait_loaded()
    v1 = asyncio.run(
        _concurrent(
            server.url, "/v1/models/iris:predict", [{"instances": [r.tolist()]} for r in rows]
        )
    )
    assert [r.json()["predictions"][0] for r in v1] == expected
    v2_bodies = [
        {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": r.tolist()}]}
        for r in rows
    ]
    v2 = asyncio.run(_concurrent(server.url, "/v2/models/iris/infer", v2_bodies))
    assert [r.json()["outputs"][0]["data"][0] for r in v2] == expected
    text = server.client.get("/metrics").text
    count = _metric(text, 'flowyard_serving_batch_size_count{model="iris"}')
    total = _metric(text, 'flowyard_serving_batch_size_sum{model="iris"}')
    assert total == 24 and count < 24  # 24 rows went through fewer model calls


def _metric(text: str, name: str) -> float:
    line = next(li for li in text.splitlines() if li.startswith(name + " "))
    return float(line.rsplit(" ", 1)[1])


def test_batcher_flushes_on_size_and_on_latency() -> None:
    calls: list[list[int]] = []

    async def run(items: list[Any]) -> list[Any]:
        calls.append(list(items))
        return [i * 10 for i in items]

    async def scenario() -> tuple[list[Any], list[Any]]:
        batcher = Batcher(3, 0.05, run)
        full = await asyncio.gather(*(batcher.submit("k", i, 1) for i in range(3)))
        partial = await asyncio.gather(*(batcher.submit("k", i, 1) for i in range(2)))
        return list(full), list(partial)

    full, partial = asyncio.run(scenario())
    assert full == [0, 10, 20] and partial == [0, 10]
    assert calls == [[0, 1, 2], [0, 1]]


def test_batcher_errors_reach_every_caller_and_keys_do_not_mix() -> None:
    async def run(items: list[Any]) -> list[Any]:
        if "bad" in items:
            raise ValueError("boom")
        return [np.asarray(items).sum()] * len(items)

    async def scenario() -> list[Any]:
        batcher = Batcher(10, 0.05, run)
        return list(
            await asyncio.gather(
                batcher.submit("a", "bad", 1),
                batcher.submit("a", "x", 1),
                batcher.submit("b", 5, 1),
                return_exceptions=True,
            )
        )

    bad, other, fine = asyncio.run(scenario())
    assert isinstance(bad, ValueError) and isinstance(other, ValueError)
    assert fine == 5
