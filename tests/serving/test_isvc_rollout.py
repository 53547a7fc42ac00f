"""InferenceService behaviour through a real control plane: canary split, promotion, rollback,
scale-to-zero (the first request is held), batcher, logger CloudEvents, bad input in status."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from tests.serving.conftest import MODELS_DIR
from tests.serving.isvc_support import cli, condition, predict, stop_replicas, wait_for, wait_ready
from tests.support.server import RunningServer

pytestmark = pytest.mark.timeout(300)
ROW = [[5.1, 3.5, 1.4, 0.2]]


def _constant_model(root: Path, label: int) -> Path:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.dummy import DummyClassifier

    x, y = load_iris(return_X_y=True)
    path = root / f"const-{label}"
    path.mkdir()
    joblib.dump(DummyClassifier(strategy="constant", constant=label).fit(x, y), path / "model.pkl")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("models")
    return {label: _constant_model(root, label) for label in (0, 1, 2)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = RunningServer(
        tmp_path_factory.mktemp("home"),
        extra_env={"FLOWYARD_SERVING_SCALE_TO_ZERO_SECONDS": "3"},
    ).start()
    yield srv
    srv.stop()
    stop_replicas(srv.home)


def _isvc(name: str, predictor: dict[str, Any], annotations: dict[str, str] | None = None) -> str:
    obj = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"predictor": predictor},
    }
    return yaml.safe_dump(obj)


def _sklearn(path: Path, **extra: Any) -> dict[str, Any]:
    return {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": str(path)}, **extra}


def _apply(server: RunningServer, doc: str) -> None:
    cli(server, "apply", "-f", "-", stdin=doc)


def _labels(url: str, name: str, n: int) -> list[int]:
    return [predict(url, name, ROW).json()["predictions"][0] for _ in range(n)]


def test_canary_split_promotion_and_rollback(
    server: RunningServer, models: dict[int, Path]
) -> None:
    tags = {"serving.kserve.io/enable-tag-routing": "true"}
    _apply(server, _isvc("canary", _sklearn(models[0]), tags))
    url = wait_ready(server, "canary")["status"]["url"]
    assert set(_labels(url, "canary", 5)) == {0}

    _apply(server, _isvc("canary", _sklearn(models[1], canaryTrafficPercent=10), tags))
    isvc = wait_for(
        server,
        "canary",
        lambda o: len(o["status"]["components"]["predictor"].get("traffic", [])) == 2,
    )
    predictor = isvc["status"]["components"]["predictor"]
    split = {t["revisionName"]: t["percent"] for t in predictor["traffic"]}
    assert split == {"canary-predictor-00002": 10, "canary-predictor-00001": 90}
    assert predictor["latestRolledoutRevision"] == "canary-predictor-00001"
    labels = _labels(url, "canary", 300)
    share = labels.count(1) / len(labels)
    assert 0.03 <= share <= 0.2, share
    assert set(labels) == {0, 1}
    # tag routing: latest- and prev- hosts pin a revision
    latest = predict(url, "canary", ROW, headers={"Host": "latest-canary-predictor.default"})
    prev = predict(url, "canary", ROW, headers={"Host": "prev-canary-predictor.default"})
    assert (latest.json()["predictions"], prev.json()["predictions"]) == ([1], [0])

    _apply(server, _isvc("canary", _sklearn(models[1]), tags))  # promotion
    isvc = wait_for(
        server,
        "canary",
        lambda o: (
            o["status"]["components"]["predictor"].get("latestRolledoutRevision")
            == "canary-predictor-00002"
        ),
    )
    predictor = isvc["status"]["components"]["predictor"]
    assert predictor["previousRolledoutRevision"] == "canary-predictor-00001"
    assert set(_labels(url, "canary", 20)) == {1}

    _apply(server, _isvc("canary", _sklearn(models[2], canaryTrafficPercent=0), tags))  # rollback
    isvc = wait_for(
        server,
        "canary",
        lambda o: (
            o["status"]["components"]["predictor"].get("latestReadyRevision")
            == "canary-predictor-00003"
        ),
    )
    split = {
        t["revisionName"]: t["percent"]
        for t in isvc["status"]["components"]["predictor"]["traffic"]
    }
    assert split == {"canary-predictor-00003": 0, "canary-predictor-00002": 100}
    assert set(_labels(url, "canary", 20)) == {1}
    cli(server, "delete", "isvc", "canary")


def _replicas(marker: str) -> int:
    count = 0
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        cmd = " ".join(argv)  # the executor's shell wrapper carries the same words: skip it
        if argv and "python" in argv[0] and "flowyard.serving.server" in cmd and marker in cmd:
            count += 1
    return count


def _wait_replicas(marker: str, want: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _replicas(marker) == want:
            return
        time.sleep(0.2)
    raise AssertionError(f"expected {want} replicas of {marker}, have {_replicas(marker)}")


def test_scale_to_zero_holds_first_request(
    server: RunningServer, tmp_path: Path, models: dict[int, Path]
) -> None:
    import shutil

    path = tmp_path / "zero-model"
    shutil.copytree(models[2], path)
    _apply(server, _isvc("zero", _sklearn(path, minReplicas=0)))
    url = wait_ready(server, "zero")["status"]["url"]
    _wait_replicas(str(path), 0)
    assert condition(wait_ready(server, "zero"), "Ready")["status"] == "True"
    answer = predict(url, "zero", ROW)  # held until a replica is up, no error
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [2]}
    assert _replicas(str(path)) == 1
    _wait_replicas(str(path), 0)
    cli(server, "delete", "isvc", "zero")


class _Sink(BaseHTTPRequestHandler):
    events: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.events.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_logger_sends_cloudevents(server: RunningServer, models: dict[int, Path]) -> None:
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    try:
        logger = {"mode": "all", "url": f"http://127.0.0.1:{sink.server_address[1]}/"}
        _apply(server, _isvc("logged", _sklearn(models[1], logger=logger)))
        url = wait_ready(server, "logged")["status"]["url"]
        for _ in range(3):
            assert predict(url, "logged", ROW).status_code == 200
        deadline = time.monotonic() + 20
        while len(_Sink.events) < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        types = sorted(h["ce-type"] for h, _ in _Sink.events)
        assert (
            types
            == ["org.kubeflow.serving.inference.request"] * 3
            + ["org.kubeflow.serving.inference.response"] * 3
        )
        headers, body = next(e for e in _Sink.events if e[0]["ce-type"].endswith("response"))
        assert headers["ce-specversion"] == "1.0"
        assert headers["ce-inferenceservicename"] == "logged"
        assert json.loads(body) == {"predictions": [1]}
        requests = [json.loads(b) for h, b in _Sink.events if h["ce-type"].endswith("request")]
        assert requests == [{"instances": ROW}] * 3
    finally:
        sink.shutdown()
        sink.server_close()
        cli(server, "delete", "isvc", "logged")


def test_batcher_merges_requests(server: RunningServer) -> None:
    predictor = {
        "batcher": {"maxBatchSize": 4, "maxLatency": 2000},
        "model": {
            "modelFormat": {"name": "custom"},
            "storageUri": str(MODELS_DIR),
            "args": ["--model-class=custom_models:BatchRecorder"],
        },
    }
    _apply(server, _isvc("batched", predictor))
    url = wait_ready(server, "batched")["status"]["url"]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: predict(url, "batched", [[float(i)]]), range(4)))
    rows = [a.json()["predictions"][0] for a in answers]
    assert sorted(r[0] for r in rows) == [0.0, 1.0, 2.0, 3.0]
    assert all(r[1] == 4 for r in rows), rows
    cli(server, "delete", "isvc", "batched")


def test_bad_inputs_are_reported_in_status(server: RunningServer, tmp_path: Path) -> None:
    not_a_model = tmp_path / "junk"
    not_a_model.mkdir()
    (not_a_model / "model.joblib").write_text("this is not a model")
    _apply(server, _isvc("junk", _sklearn(not_a_model)))
    _apply(server, _isvc("missing", _sklearn(tmp_path / "nowhere")))
    wrong = {
        "model": {
            "modelFormat": {"name": "sklearn"},
            "runtime": "kserve-xgbserver",
            "storageUri": str(not_a_model),
        }
    }
    _apply(server, _isvc("wrong-runtime", wrong))
    for name in ("junk", "missing"):
        isvc = wait_for(
            server,
            name,
            lambda o: (
                (o.get("status") or {}).get("modelStatus", {}).get("transitionStatus")
                == "BlockedByFailedLoad"
            ),
        )
        failure = isvc["status"]["modelStatus"]["lastFailureInfo"]
        assert failure["reason"] == "ModelLoadFailed", failure
        assert condition(isvc, "Ready")["status"] == "False"
        # the replica stays up and says why on the data plane too
        answer = predict(isvc["status"]["components"]["predictor"]["url"], name, ROW)
        assert answer.status_code == 503
    isvc = wait_for(server, "wrong-runtime", lambda o: bool(condition(o, "Ready")))
    assert condition(isvc, "Ready")["reason"] == "NoSupportingRuntime"
    assert "kserve-xgbserver does not support" in condition(isvc, "Ready")["message"]
    for name in ("junk", "missing", "wrong-runtime"):
        cli(server, "delete", "isvc", name)
