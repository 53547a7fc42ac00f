"""The study REST API (Vizier style) through a real server and HTTP, plus a TensorFlowEvent
experiment whose trial writes event files with tensorboardX."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import RunningServer
from tests.tuning.support import wait_finished


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("tuning-study-home")).start()
    yield running
    running.stop()


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    base = f"{server.url}/tuning/v1/namespaces/default"
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        yield client


def _spec(**extra: Any) -> dict[str, Any]:
    return {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {
            "algorithmName": "tpe",
            "algorithmSettings": [{"name": "random_state", "value": "7"}],
        },
        "parameters": [
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-2", "max": "2"}},
            {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "4"}},
            {
                "name": "opt",
                "parameterType": "categorical",
                "feasibleSpace": {"list": ["adam", "sgd"]},
            },
        ],
        **extra,
    }


def _ok(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def _measure(http: httpx.Client, study: str, trial: str, step: int, loss: float) -> Any:
    body = {"measurement": {"stepCount": step, "metrics": [{"metricId": "loss", "value": loss}]}}
    return _ok(http.post(f"/studies/{study}/trials/{trial}:addMeasurement", json=body))


def _loss(params: dict[str, Any]) -> float:
    return (params["x"] - 0.5) ** 2 + params["n"] + (0.0 if params["opt"] == "adam" else 1.0)


def test_workers_run_a_study_to_its_budget(server: RunningServer, http: httpx.Client) -> None:
    study = _ok(
        http.post("/studies", json={"name": "remote", "spec": _spec(maxTrialCount=12)}), 201
    )
    assert study["state"] == "Active" and study["spec"]["parallelTrialCount"] == 3  # defaulted
    assert _ok(http.post("/studies", json={"name": "remote", "spec": _spec()}), 409)["reason"]

    def worker(client_id: str, seen: list[str]) -> None:
        while True:
            out = _ok(http.post("/studies/remote/trials:suggest", json={"clientId": client_id}))
            if not out["trials"]:
                assert out["studyDone"]
                return
            (trial,) = out["trials"]
            params = trial["parameters"]
            assert isinstance(params["x"], float) and isinstance(params["n"], int)
            seen.append(trial["name"])
            for step in range(2):
                _measure(http, "remote", trial["name"], step, _loss(params) + 1 - step)
            final = {"metrics": [{"metricId": "loss", "value": _loss(params)}]}
            done = _ok(
                http.post(
                    f"/studies/remote/trials/{trial['name']}:complete",
                    json={"finalMeasurement": final},
                )
            )
            assert done["state"] == "Succeeded"

    names: dict[str, list[str]] = {"w1": [], "w2": []}
    threads = [threading.Thread(target=worker, args=(c, names[c])) for c in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    handed = names["w1"] + names["w2"]
    assert len(handed) == 12 and len(set(handed)) == 12, handed  # no duplicates, full budget

    trials = _ok(http.get("/studies/remote/trials"))["trials"]
    assert len(trials) == 12 and {t["state"] for t in trials} == {"Succeeded"}
    best = min(trials, key=lambda t: _loss(t["parameters"]))
    optimal = _ok(http.get("/studies/remote:listOptimalTrials"))["optimalTrials"]
    assert [t["name"] for t in optimal] == [best["name"]]
    assert len(best["measurements"]) == 2 and best["finalMeasurement"]["metrics"]
    with server.client() as client:  # the study is an Experiment: the controller keeps status
        exp = wait_finished(client, "remote", "default", timeout=30)
    status = exp["status"]
    assert status["trialsSucceeded"] == 12
    assert status["currentOptimalTrial"]["bestTrialName"] == best["name"]
    assert any(c["reason"] == "ExperimentMaxTrialsReached" for c in status["conditions"])
    assert _ok(http.get("/studies/remote"))["state"] == "Succeeded"


def test_client_id_idempotency_stop_and_errors(http: httpx.Client) -> None:
    _ok(http.post("/studies", json={"name": "idem", "spec": _spec()}), 201)
    first = _ok(
        http.post("/studies/idem/trials:suggest", json={"suggestionCount": 2, "clientId": "a"})
    )
    again = _ok(
        http.post("/studies/idem/trials:suggest", json={"suggestionCount": 2, "clientId": "a"})
    )
    assert [t["name"] for t in again["trials"]] == [t["name"] for t in first["trials"]]
    assert len(first["trials"]) == 2
    other = _ok(http.post("/studies/idem/trials:suggest", json={"clientId": "b"}))["trials"]
    assert len(other) == 1 and other[0]["name"] not in {t["name"] for t in first["trials"]}

    name = first["trials"][0]["name"]
    infeasible = {"trialInfeasible": True, "infeasibleReason": "out of memory"}
    assert (
        _ok(http.post(f"/studies/idem/trials/{name}:complete", json=infeasible))["state"]
        == "Failed"
    )
    # Completing again is a safe retry; measuring a finished trial is a conflict.
    assert _ok(http.post(f"/studies/idem/trials/{name}:complete", json={}))["state"] == "Failed"
    late = http.post(
        f"/studies/idem/trials/{name}:addMeasurement",
        json={"measurement": {"metrics": [{"metricId": "loss", "value": 1}]}},
    )
    assert late.status_code == 409 and "Failed" in late.json()["message"]

    second = first["trials"][1]["name"]
    bad = http.post(
        f"/studies/idem/trials/{second}:addMeasurement",
        json={"measurement": {"metrics": [{"metricId": "loss", "value": "NaN"}]}},
    )
    assert bad.status_code == 422 and "metrics[0].value" in bad.json()["message"]
    assert _ok(http.post(f"/studies/idem/trials/{second}:complete", json={}))["state"] == (
        "MetricsUnavailable"
    )
    stopped = _ok(http.post(f"/studies/idem/trials/{other[0]['name']}:stop"))
    assert stopped["state"] == "EarlyStopped"

    assert http.get("/studies/missing").status_code == 404
    assert http.get("/studies/idem/trials/nope").status_code == 404
    rejected = http.post(
        "/studies",
        json={
            "name": "badlog",
            "spec": _spec(
                parameters=[
                    {
                        "name": "lr",
                        "parameterType": "double",
                        "feasibleSpace": {"min": "0", "max": "1", "distribution": "logUniform"},
                    }
                ]
            ),
        },
    )
    assert rejected.status_code == 422 and "feasibleSpace" in rejected.json()["message"]
    unauth = httpx.post(
        str(http.base_url).rstrip("/") + "/studies", json={"name": "x", "spec": _spec()}
    )
    assert unauth.status_code == 401
    assert _ok(http.delete("/studies/idem"))["status"] == "Success"


def test_median_early_stopping(http: httpx.Client) -> None:
    spec = _spec(
        earlyStopping={
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required", "value": "2"},
                {"name": "start_step", "value": "2"},
            ],
        }
    )
    _ok(http.post("/studies", json={"name": "stopper", "spec": spec}), 201)
    for curve in ([1.0, 0.8, 0.6], [1.2, 1.0, 0.9]):
        (trial,) = _ok(http.post("/studies/stopper/trials:suggest", json={}))["trials"]
        for step, loss in enumerate(curve):
            _measure(http, "stopper", trial["name"], step, loss)
        _ok(http.post(f"/studies/stopper/trials/{trial['name']}:complete", json={}))
    (good, bad) = _ok(http.post("/studies/stopper/trials:suggest", json={"suggestionCount": 2}))[
        "trials"
    ]
    path = "/studies/stopper/trials/{}:checkEarlyStoppingState"
    _measure(http, "stopper", bad["name"], 0, 5.0)
    assert _ok(http.post(path.format(bad["name"])))["shouldStop"] is False  # before start_step
    _measure(http, "stopper", bad["name"], 1, 4.0)
    _measure(http, "stopper", good["name"], 0, 0.7)
    _measure(http, "stopper", good["name"], 1, 0.5)
    # medians of running averages at step 2: (0.9, 1.1) -> 1.0; best 4.0 is worse, 0.5 is not.
    assert _ok(http.post(path.format(bad["name"])))["shouldStop"] is True
    assert _ok(http.post(path.format(good["name"])))["shouldStop"] is False
    trials = {t["name"]: t["state"] for t in _ok(http.get("/studies/stopper/trials"))["trials"]}
    assert trials[bad["name"]] == "EarlyStopped" and trials[good["name"]] == "Running"


TF_TRAINER = """
import sys, warnings
warnings.simplefilter("ignore")
from tensorboardX import SummaryWriter
lr = float(sys.argv[1]); logdir = sys.argv[2]
writer = SummaryWriter(logdir)
for step in range(3):
    writer.add_scalar("accuracy", 1 - abs(lr - 0.05) - 0.1 * (2 - step), step)
writer.close()
"""


def test_tensorflow_event_collector(server: RunningServer, tmp_path: Path) -> None:
    script = tmp_path / "tf_trainer.py"
    script.write_text(TF_TRAINER)
    experiment = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "tfevent", "namespace": "default"},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "test/accuracy"},
            "algorithm": {"algorithmName": "random"},
            "maxTrialCount": 2,
            "parallelTrialCount": 2,
            "metricsCollectorSpec": {
                "collector": {"kind": "TensorFlowEvent"},
                "source": {"fileSystemPath": {"kind": "Directory", "path": "/logs"}},
            },
            "parameters": [
                {
                    "name": "lr",
                    "parameterType": "double",
                    "feasibleSpace": {"min": "0.01", "max": "0.1"},
                },
            ],
            "trialTemplate": {
                "primaryContainerName": "main",
                "trialParameters": [{"name": "lr", "reference": "lr"}],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {
                                        "name": "main",
                                        "image": "tensorflow",
                                        "command": [
                                            sys.executable,
                                            str(script),
                                            "${trialParameters.lr}",
                                            "/logs/test",
                                        ],
                                    }
                                ],
                            }
                        }
                    },
                },
            },
        },
    }
    with server.client() as client:
        client.create(experiment)
        exp = wait_finished(client, "tfevent", "default", timeout=90)
        assert exp["status"].get("trialsSucceeded") == 2, exp["status"]
        metrics = exp["status"]["currentOptimalTrial"]["observation"]["metrics"]
        (accuracy,) = metrics
        assert accuracy["name"] == "test/accuracy"
        assert 0.9 <= float(accuracy["max"]) <= 1.0  # the last step: 1 - |lr - 0.05|
        assert float(accuracy["min"]) < float(accuracy["max"])
