"""Custom models (KServe method names, sync and async), health during a slow predict, load
failures and slow loads, and containerConcurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.serving.conftest import MODELS_DIR, Server


def _custom(start_server: Any, cls: str, *extra: str) -> Server:
    server: Server = start_server(
        [
            "--model-name",
            "m",
            "--model-dir",
            str(MODELS_DIR),
            "--runtime",
            "custom",
            "--model-class",
            f"custom_models:{cls}",
            *extra,
        ]
    )
    return server


@pytest.fixture(scope="module")
def pipeline(start_server: Any) -> Server:
    return _custom(start_server, "Pipeline").wait_loaded()


def test_pre_predict_post_chain(pipeline: Server) -> None:
    resp = pipeline.client.post("/v1/models/m:predict", json={"instances": [[1, 2], [3, 4]]})
    assert resp.status_code == 200
    assert resp.json() == {"predictions": [6, 14], "postprocessed": True}


def test_custom_explain(pipeline: Server) -> None:
    resp = pipeline.client.post("/v1/models/m:explain", json={"instances": [[1, 2, 3]]})
    assert resp.json() == {"explanations": [[1.0, 1.0, 1.0]]}


def test_custom_v2_returning_a_dict_of_arrays(pipeline: Server) -> None:
    body = {"id": "x", "inputs": [{"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 5]}]}
    resp = pipeline.client.post("/v2/models/m/infer", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["outputs"] == [
        {"name": "doubled", "shape": [2], "datatype": "INT32", "data": [2, 10]}
    ]


def test_seldon_raw_payloads_reach_the_model(pipeline: Server) -> None:
    text = pipeline.client.post("/api/v1.0/predictions", json={"strData": "hello"})
    assert text.json()["strData"] == "HELLO"
    js = pipeline.client.post(
        "/api/v0.1/predictions", json={"jsonData": {"k": [1]}}, headers={"X-Test": "yes"}
    )
    assert js.json()["jsonData"] == {"echo": {"k": [1]}, "saw_header": "yes"}


def test_health_answers_during_a_two_second_sync_predict(start_server: Any) -> None:
    slow = _custom(start_server, "SlowPredict").wait_loaded()

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=slow.url, timeout=30) as client:
            predict = asyncio.create_task(
                client.post("/v1/models/m:predict", json={"instances": [[1]]})
            )
            await asyncio.sleep(0.3)
            for _ in range(3):
                live = await client.get("/v2/health/live")
                ready = await client.get("/v2/health/ready")
                assert live.status_code == ready.status_code == 200
            # the probes were answered while predict still held its thread: a blocked event
            # loop would have answered them only after predict returned
            assert not predict.done()
            result = await predict
            assert result.json() == {"predictions": [1]}

    asyncio.run(scenario())


def test_not_ready_while_loading_then_ready(start_server: Any) -> None:
    server = _custom(start_server, "SlowLoad").wait_live()
    assert server.client.get("/v2/health/live").status_code == 200
    ready = server.client.get("/v2/health/ready")
    assert ready.status_code == 503 and ready.json() == {"ready": False}
    assert server.client.get("/v2/models/m/ready").status_code == 503
    assert server.client.get("/v1/models/m").status_code == 503
    predict = server.client.post("/v1/models/m:predict", json={"instances": [1]})
    assert predict.status_code == 503
    assert "not ready" in predict.json()["error"]
    infer = server.client.post(
        "/v2/models/m/infer",
        json={"inputs": [{"name": "a", "shape": [1], "datatype": "INT32", "data": [1]}]},
    )
    assert infer.status_code == 503
    assert server.client.get("/flowyard/status").json()["state"] == "Loading"
    server.wait_loaded()
    assert server.client.post("/v1/models/m:predict", json={"instances": [1]}).json() == {
        "predictions": [1]
    }


def test_load_failure_keeps_server_up_and_says_why(start_server: Any) -> None:
    server = _custom(start_server, "BrokenLoad").wait_loaded()
    status = server.client.get("/flowyard/status").json()
    assert status["state"] == "FailedToLoad"
    assert status["reason"] == "ModelLoadFailed"
    assert "weights file is corrupt" in status["message"]
    resp = server.client.post("/v1/models/m:predict", json={"instances": [1]})
    assert resp.status_code == 503
    assert "weights file is corrupt" in resp.json()["error"]
    assert server.alive()
    assert "weights file is corrupt" in server.output()


@pytest.mark.parametrize(
    ("cls", "fragment"),
    [("NoSuchClass", "has no class NoSuchClass"), ("x", "must look like module:Class")],
)
def test_bad_model_class_is_reported(start_server: Any, cls: str, fragment: str) -> None:
    spec = "custom_models:NoSuchClass" if cls == "NoSuchClass" else "custom_models"
    server: Server = start_server(
        [
            "--model-name",
            "m",
            "--model-dir",
            str(MODELS_DIR),
            "--runtime",
            "custom",
            "--model-class",
            spec,
        ]
    )
    status = server.wait_loaded().client.get("/flowyard/status").json()
    assert status["state"] == "FailedToLoad"
    assert fragment in status["message"]


def test_container_concurrency_limits_and_queues(start_server: Any) -> None:
    server = _custom(start_server, "InFlight", "--container-concurrency", "2").wait_loaded()

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            calls = [
                client.post("/v1/models/m:predict", json={"instances": [[i]]}) for i in range(6)
            ]
            return list(await asyncio.gather(*calls))

    responses = asyncio.run(burst())
    assert all(r.status_code == 200 for r in responses)
    most = max(r.json()["predictions"][0] for r in responses)
    assert most == 2
