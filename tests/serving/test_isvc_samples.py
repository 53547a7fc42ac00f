"""Every upstream KServe sample with an in-process format, applied unchanged with
``flowyard apply -f`` and answering on the URL in its status.

``gs://`` cannot be fetched here: the control plane runs with ``FLOWYARD_STORAGE_URI_MAP``
mapping the samples' buckets to local directories holding models trained in this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving.isvc_support import (
    EXAMPLES,
    cli,
    condition,
    get,
    predict,
    stop_replicas,
    wait_for,
    wait_ready,
)
from tests.support.server import RunningServer

pytestmark = [
    pytest.mark.skipif(not EXAMPLES.is_dir(), reason="upstream reference data missing"),
    pytest.mark.timeout(240),
]
ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]


def _train(root: Path) -> dict[str, str]:
    import joblib
    import xgboost as xgb
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    sk = root / "kfserving-examples/models/sklearn/1.0/model"
    sk.mkdir(parents=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), sk / "model.joblib")
    seldon = root / "seldon-models/sklearn/iris"
    seldon.mkdir(parents=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), seldon / "model.joblib")
    xg = root / "kfserving-examples/models/xgboost/iris"
    xg.mkdir(parents=True)
    clf = xgb.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1).fit(x, y)
    clf.get_booster().save_model(str(xg / "model.json"))
    return {
        "gs://kfserving-examples": str(root / "kfserving-examples"),
        "gs://seldon-models": str(root / "seldon-models"),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("buckets")
    mapping = ";".join(f"{k}={v}" for k, v in _train(root).items())
    srv = RunningServer(
        tmp_path_factory.mktemp("home"),
        extra_env={"FLOWYARD_STORAGE_URI_MAP": mapping},
    ).start()
    yield srv
    srv.stop()
    stop_replicas(srv.home)


def _apply_and_wait(server: RunningServer, sample: str, name: str) -> dict[str, object]:
    cli(server, "apply", "-f", str(EXAMPLES / sample))
    return wait_ready(server, name)


def test_builtin_runtimes_are_listed(server: RunningServer) -> None:
    out = cli(server, "get", "clusterservingruntimes")
    for name in ("kserve-sklearnserver", "kserve-xgbserver", "kserve-lgbserver"):
        assert name in out


def test_sklearn_v1_sample(server: RunningServer) -> None:
    isvc = _apply_and_wait(server, "sklearn-iris-v1.yaml", "sklearn-iris")
    status = isvc["status"]
    url = status["url"]
    assert status["address"]["url"] == url
    predictor = status["components"]["predictor"]
    assert predictor["latestReadyRevision"] == "sklearn-iris-predictor-00001"
    assert predictor["traffic"][0]["percent"] == 100
    assert status["modelStatus"]["states"]["activeModelState"] == "Loaded"
    for cond in ("PredictorReady", "IngressReady", "LatestDeploymentReady"):
        assert condition(isvc, cond)["status"] == "True", cond
    answer = predict(url, "sklearn-iris", ROWS)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [1, 1]}
    # the predictor URL answers too, and `get isvc` prints the URL column
    assert predict(predictor["url"], "sklearn-iris", ROWS).json() == {"predictions": [1, 1]}
    assert url in cli(server, "get", "isvc", "sklearn-iris", "-o", "yaml")
    cli(server, "delete", "-f", str(EXAMPLES / "sklearn-iris-v1.yaml"))


def test_sklearn_modelformat_and_v2_samples(server: RunningServer) -> None:
    isvc = _apply_and_wait(server, "sklearn-iris-v2.yaml", "sklearn-irisv2")
    url = isvc["status"]["url"]
    body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": ROWS}]}
    answer = httpx.post(f"{url}/v2/models/sklearn-irisv2/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [1, 1]
    isvc = _apply_and_wait(server, "sklearn-iris-modelformat.yaml", "sklearn-iris")
    assert predict(isvc["status"]["url"], "sklearn-iris", ROWS).json() == {"predictions": [1, 1]}


def test_v2_grpc_through_the_inferenceservice(server: RunningServer) -> None:
    import grpc
    import numpy as np

    from flowyard.serving.grpc_server import pb, services

    isvc = _apply_and_wait(server, "sklearn-iris-v2.yaml", "sklearn-irisv2")
    address = isvc["status"]["grpcAddress"]
    assert address.startswith("127.0.0.1:")
    with grpc.insecure_channel(address) as channel:
        stub = services.GRPCInferenceServiceStub(channel)
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        assert stub.ModelReady(pb.ModelReadyRequest(name="sklearn-irisv2"), timeout=10).ready
        req = pb.ModelInferRequest(model_name="sklearn-irisv2", id="via-router")
        req.inputs.add(name="input-0", datatype="FP64", shape=[2, 4])
        req.raw_input_contents.append(np.array(ROWS, dtype="<f8").tobytes())
        resp = stub.ModelInfer(req, timeout=10)
        assert resp.id == "via-router"
        assert np.frombuffer(resp.raw_output_contents[0], dtype="<i8").tolist() == [1, 1]
        with pytest.raises(grpc.RpcError) as info:  # the replica's error code comes through
            stub.ModelInfer(pb.ModelInferRequest(model_name="nope"), timeout=10)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_xgboost_v2_sample(server: RunningServer) -> None:
    isvc = _apply_and_wait(server, "xgboost-iris.yaml", "xgboost-iris")
    url = isvc["status"]["url"]
    meta = httpx.get(f"{url}/v2/models/xgboost-iris", timeout=10).json()
    body = {
        "inputs": [
            {
                "name": meta["inputs"][0]["name"],
                "shape": [2, 4],
                "datatype": meta["inputs"][0]["datatype"],
                "data": ROWS,
            }
        ]
    }
    answer = httpx.post(f"{url}/v2/models/xgboost-iris/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["outputs"][0]["data"]) == 6


def test_tensorflow_sample_says_no_supporting_runtime(server: RunningServer) -> None:
    cli(server, "apply", "-f", str(EXAMPLES / "canary-1-default.yaml"))
    isvc = wait_for(server, "my-model", lambda o: bool(condition(o, "Ready")))
    ready = condition(isvc, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "NoSupportingRuntime"
    assert "tensorflow" in ready["message"]
    failure = isvc["status"]["modelStatus"]["lastFailureInfo"]
    assert failure["reason"] == "NoSupportingRuntime"
    cli(server, "delete", "isvc", "my-model")
    assert get  # (kept for symmetry with other modules)
