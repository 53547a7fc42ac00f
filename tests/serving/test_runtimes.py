"""Each built-in runtime serves a tiny model trained here, and bad model files fail clearly."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flowyard.errors import FlowyardError
from flowyard.serving.runtimes import create_model
from tests.serving.conftest import Server


def _serve(start_server: Any, runtime: str, model_dir: Path) -> Server:
    server: Server = start_server(
        ["--model-name", "m", "--model-dir", str(model_dir), "--runtime", runtime]
    )
    return server.wait_loaded()


def _v1(server: Server, rows: np.ndarray) -> Any:
    resp = server.client.post("/v1/models/m:predict", json={"instances": rows.tolist()})
    assert resp.status_code == 200, resp.text
    return np.asarray(resp.json()["predictions"])


def _v2(server: Server, rows: np.ndarray, datatype: str = "FP32") -> dict[str, Any]:
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": datatype,
                "data": rows.reshape(-1).tolist(),
            }
        ]
    }
    resp = server.client.post("/v2/models/m/infer", json=body)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()["outputs"][0]
    return out


def test_xgboost(start_server: Any, tmp_path: Path, iris_data: Any) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = iris_data
    clf = xgb.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1).fit(x, y)
    clf.get_booster().save_model(str(tmp_path / "model.json"))
    expected = clf.get_booster().inplace_predict(x[:5].astype(np.float32))
    server = _serve(start_server, "xgboost", tmp_path)
    np.testing.assert_allclose(_v1(server, x[:5]), expected, rtol=1e-5)
    out = _v2(server, x[:5])
    assert out["shape"] == [5, 3] and out["datatype"] == "FP32"
    meta = server.client.get("/v2/models/m").json()
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "output-0", "datatype": "FP32", "shape": [-1, 3]}]


def test_lightgbm(start_server: Any, tmp_path: Path, iris_data: Any) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = iris_data
    params = {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=4)
    booster.save_model(str(tmp_path / "model.txt"))
    server = _serve(start_server, "lightgbm", tmp_path)
    np.testing.assert_allclose(_v1(server, x[:5]), booster.predict(x[:5]), rtol=1e-6)
    meta = server.client.get("/v2/models/m").json()
    assert meta["inputs"][0]["shape"] == [-1, 4]
    assert meta["outputs"][0]["shape"] == [-1, 3]


def _logistic(iris_data: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    x, y = iris_data
    return LogisticRegression(max_iter=1000).fit(x, y)


def test_onnx(start_server: Any, tmp_path: Path, iris_data: Any) -> None:
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    model = _logistic(iris_data)
    weights = numpy_helper.from_array(model.coef_.T.astype(np.float32), "W")
    bias = numpy_helper.from_array(model.intercept_.astype(np.float32), "B")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "B"], ["scores"]),
        ],
        "iris_linear",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3])],
        initializer=[weights, bias],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    onnx.save(proto, str(tmp_path / "model.onnx"))
    x, _ = iris_data
    expected = model.decision_function(x[:5])
    server = _serve(start_server, "onnx", tmp_path)
    np.testing.assert_allclose(_v1(server, x[:5]), expected, rtol=1e-4, atol=1e-4)
    body = {
        "inputs": [
            {
                "name": "features",
                "shape": [5, 4],
                "datatype": "FP64",
                "data": x[:5].reshape(-1).tolist(),
            }
        ]
    }
    out = server.client.post("/v2/models/m/infer", json=body).json()["outputs"][0]
    assert out["name"] == "scores" and out["shape"] == [5, 3]
    meta = server.client.get("/v2/models/m").json()
    assert meta["platform"] == "onnx_onnxv1"
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [-1, 3]}]


def test_pytorch(start_server: Any, tmp_path: Path, iris_data: Any) -> None:
    torch = pytest.importorskip("torch")
    model = _logistic(iris_data)
    linear = torch.nn.Linear(4, 3)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(model.coef_, dtype=torch.float32))
        linear.bias.copy_(torch.tensor(model.intercept_, dtype=torch.float32))
    with warnings.catch_warnings():  # TorchScript is deprecated upstream but still the format
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(linear).save(str(tmp_path / "model.pt"))
    x, _ = iris_data
    server = _serve(start_server, "pytorch", tmp_path)
    np.testing.assert_allclose(
        _v1(server, x[:5]), model.decision_function(x[:5]), rtol=1e-4, atol=1e-4
    )
    assert _v2(server, x[:5])["shape"] == [5, 3]


def test_garbage_model_file_fails_to_load_and_server_stays_up(
    start_server: Any, tmp_path: Path
) -> None:
    (tmp_path / "model.joblib").write_bytes(b"this is not a model")
    server = _serve(start_server, "sklearn", tmp_path)
    status = server.client.get("/flowyard/status").json()
    assert status["state"] == "FailedToLoad" and status["reason"] == "ModelLoadFailed"
    assert "model.joblib is not a joblib or pickle file" in status["message"]
    assert server.client.get("/v2/health/ready").status_code == 503
    assert server.client.get("/v2/health/live").status_code == 200


def test_missing_storage_uri_fails_to_load(start_server: Any, tmp_path: Path) -> None:
    server = _serve(start_server, "sklearn", tmp_path / "nowhere")
    status = server.client.get("/flowyard/status").json()
    assert status["state"] == "FailedToLoad"
    assert "does not exist" in status["message"]


def _load_error(runtime: str, model_dir: Path) -> str:
    model = create_model(runtime, "m", str(model_dir))
    with pytest.raises(FlowyardError) as info:
        model.load()
    return info.value.message


def test_bad_model_files_in_process(tmp_path: Path, iris_dir: Path) -> None:
    with (tmp_path / "model.pkl").open("wb") as handle:
        pickle.dump({"not": "a model"}, handle)
    assert "holds a dict, not a model" in _load_error("sklearn", tmp_path)
    # a runtime that does not support the format in the directory
    assert "expected one of model.bst" in _load_error("xgboost", iris_dir)
    assert "expected one of model.onnx" in _load_error("onnx", iris_dir)
    onnx_dir = tmp_path / "onnx"
    onnx_dir.mkdir()
    (onnx_dir / "model.onnx").write_bytes(b"\x00garbage")
    assert "is not an ONNX model" in _load_error("onnx", onnx_dir)
    with pytest.raises(FlowyardError, match="not supported"):
        create_model("tensorflow", "m", str(tmp_path))
