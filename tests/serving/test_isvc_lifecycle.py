"""InferenceService lifecycle through a real control plane: a transformer in front of a
predictor, request-based autoscaling between min and max, crash-loop back-off of a replica
that keeps exiting, and adoption of running replicas after the control plane is killed."""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.serving.conftest import MODELS_DIR
from tests.serving.isvc_support import (
    cli,
    condition,
    get,
    predict,
    stop_replicas,
    wait_for,
    wait_ready,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = RunningServer(tmp_path_factory.mktemp("home")).start()
    yield srv
    srv.stop()
    stop_replicas(srv.home)


def _custom(model_class: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": {
            "modelFormat": {"name": "custom"},
            "storageUri": str(MODELS_DIR),
            "args": [f"--model-class=custom_models:{model_class}"],
        },
        **extra,
    }


def _apply(server: RunningServer, name: str, spec: dict[str, Any]) -> None:
    obj = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": spec,
    }
    cli(server, "apply", "-f", "-", stdin=yaml.safe_dump(obj))


def test_transformer_pre_and_postprocess_around_the_predictor(server: RunningServer) -> None:
    transformer = {
        "containers": [
            {
                "name": "kserve-container",
                "command": [sys.executable, "-m", "flowyard.serving.server", "--runtime=custom"],
                "args": ["--model-class=custom_models:Doubler", f"--model-dir={MODELS_DIR}"],
                "readinessProbe": {"httpGet": {"path": "/v2/health/ready"}},
            }
        ]
    }
    _apply(server, "chain", {"predictor": _custom("RowSum"), "transformer": transformer})
    isvc = wait_ready(server, "chain")
    assert condition(isvc, "TransformerReady")["status"] == "True"
    answer = predict(isvc["status"]["url"], "chain", [[1.0, 2.0], [3.0, 4.0]])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # preprocess doubled the rows before the predictor summed them; postprocess marked it
    assert body["predictions"] == [6.0, 14.0]
    assert body["transformed_by"] == "chain"
    # the predictor URL skips the transformer
    direct = predict(isvc["status"]["components"]["predictor"]["url"], "chain", [[1.0, 2.0]])
    assert direct.json()["predictions"] == [3.0] and "transformed_by" not in direct.json()
    cli(server, "delete", "isvc", "chain")


def _copies(isvc: dict[str, Any]) -> int:
    return int(
        ((isvc.get("status") or {}).get("modelStatus") or {})
        .get("copies", {})
        .get("totalCopies", 0)
    )


def test_autoscaling_between_min_and_max(server: RunningServer) -> None:
    spec = _custom("Sleepy", minReplicas=1, maxReplicas=3, scaleTarget=1)
    spec["scaleMetric"] = "concurrency"
    _apply(server, "scaled", {"predictor": spec})
    url = wait_ready(server, "scaled")["status"]["url"]
    pids: set[int] = set()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                answer = client.post(f"{url}/v1/models/scaled:predict", json={"instances": [[1.0]]})
                assert answer.status_code == 200, answer.text
                pids.add(answer.json()["predictions"][0])

    threads = [threading.Thread(target=load, daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        isvc = wait_for(server, "scaled", lambda o: _copies(o) >= 2, timeout=60)
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(pids) >= 2, pids  # requests reached the new replicas
        assert _copies(isvc) <= 3
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    # idle: back down to minReplicas, never below
    isvc = wait_for(server, "scaled", lambda o: _copies(o) == 1, timeout=60)
    assert condition(isvc, "Ready")["status"] == "True"
    assert predict(url, "scaled", [[1.0]]).status_code == 200
    cli(server, "delete", "isvc", "scaled")


def _restarts(isvc: dict[str, Any]) -> tuple[int, float]:
    message = condition(isvc, "PredictorReady").get("message", "")
    match = re.search(r"back-off (\d+(?:\.\d+)?)s .*restarts: (\d+)", message)
    return (int(match.group(2)), float(match.group(1))) if match else (0, 0.0)


def test_crash_looping_replica_backs_off(server: RunningServer) -> None:
    crash = [sys.executable, "-c", "import sys; print('cannot start'); sys.exit(3)"]
    _apply(server, "crashy", {"predictor": {"containers": [{"name": "c", "command": crash}]}})
    started = time.monotonic()
    isvc = wait_for(server, "crashy", lambda o: _restarts(o)[0] >= 3, timeout=60)
    elapsed = time.monotonic() - started
    restarts, backoff = _restarts(isvc)
    assert condition(isvc, "PredictorReady")["reason"] == "CrashLoopBackOff"
    failure = isvc["status"]["modelStatus"]["lastFailureInfo"]
    assert failure["reason"] == "RuntimeUnhealthy" and failure["exitCode"] == 3, failure
    assert "cannot start" in failure["message"]
    assert backoff == 2.0 ** (restarts - 1)  # 1 s, 2 s, 4 s, ...
    assert elapsed >= 1 + 2 - 0.5  # two back-offs passed before the third restart was recorded
    time.sleep(4)
    later, _ = _restarts(get(server, "crashy"))
    assert later <= restarts + 1  # the next one waits 4 s, then 8 s: no 1/s relaunch loop
    cli(server, "delete", "isvc", "crashy")


def test_restart_adopts_running_replicas(tmp_path: Path) -> None:
    srv = RunningServer(tmp_path / "home").start()
    try:
        _apply(srv, "adopted", {"predictor": _custom("RowSum")})
        isvc = wait_ready(srv, "adopted")
        url = isvc["status"]["url"]
        before = predict(url, "adopted", [[1.0]]).json()["pid"]
        srv.kill9()
        srv.start()
        isvc = wait_ready(srv, "adopted")
        assert isvc["status"]["url"] == url  # the router reopened on the same port
        answer = predict(url, "adopted", [[1.0, 1.0]])
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": [2.0], "pid": before}  # same replica process
        assert [
            c["revisionName"] for c in isvc["status"]["components"]["predictor"]["traffic"]
        ] == ["adopted-predictor-00001"]
    finally:
        srv.stop()
        stop_replicas(srv.home)
