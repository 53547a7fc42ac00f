"""tune() with typed values, bad experiments rejected at apply time, resume on raising
maxTrialCount, ending an experiment stops its running trials — through a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flowyard
from flowyard.errors import InvalidError
from flowyard.resources.conditions import get_condition
from flowyard.tuning.api import TuningClient
from tests.support.server import RunningServer
from tests.tuning.conftest import EXAMPLES_DIR, load_example
from tests.tuning.support import adapt, trials_of, wait_finished


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("tuning-api-home")).start()
    yield running
    running.stop()


def objective(parameters):  # type: ignore[no-untyped-def]
    import json as _json
    import os

    out = os.path.join(parameters["out_dir"], os.environ["FLOWYARD_TRIAL_NAME"] + ".json")
    with open(out, "w") as handle:
        _json.dump({k: [type(v).__name__, v] for k, v in parameters.items()}, handle)
    assert isinstance(parameters["lr"], float) and isinstance(parameters["layers"], int)
    penalty = {"adam": 0.0, "sgd": 0.5}[parameters["optimizer"]]
    return (parameters["lr"] - 0.01) ** 2 * 1e4 + abs(parameters["layers"] - 3) + penalty


def pushing_objective(parameters):  # type: ignore[no-untyped-def]
    import flowyard

    for step in range(3):
        flowyard.report_metrics({"score": parameters["x"] * (step + 1), "step": step})


def test_tune_passes_typed_values_and_finds_the_optimum(
    server: RunningServer, tmp_path: Path
) -> None:
    search = flowyard.search
    with server.client() as client:
        flowyard.tune(
            objective,
            {
                "lr": search.double(1e-4, 1e-1, log=True),
                "layers": search.int(1, 5),
                "optimizer": search.categorical(["adam", "sgd"]),
                "batch": search.discrete([16, 32]),
                "out_dir": str(tmp_path),
            },
            name="typed",
            objective_metric_name="loss",
            objective_type="minimize",
            algorithm_name="tpe",
            max_trial_count=12,
            parallel_trial_count=3,
            client=client,
        )
        tuner = TuningClient(client)
        exp = tuner.wait_for_experiment_condition("typed", timeout=120)
        best = tuner.get_optimal_hyperparameters("typed")
        trials = tuner.list_trials("typed")
    assert get_condition(exp, "Succeeded")["reason"] == "ExperimentMaxTrialsReached"
    assert exp["status"]["trialsSucceeded"] == 12 == len(trials)
    seen = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert len(seen) == 12
    for params in seen:
        assert params["lr"][0] == "float" and params["layers"][0] == "int"
        assert params["optimizer"][0] == "str" and params["batch"][0] == "int"
        assert params["out_dir"] == ["str", str(tmp_path)]
    assert isinstance(best["parameters"]["lr"], float)
    assert isinstance(best["parameters"]["layers"], int)
    values = [float(m["min"]) for t in trials for m in t["status"]["observation"]["metrics"]]
    assert best["metrics"]["loss"]["min"] == min(values)


def test_tune_with_push_collector(server: RunningServer) -> None:
    with server.client() as client:
        flowyard.tune(
            pushing_objective,
            {"x": flowyard.search.double(0.0, 1.0)},
            name="pushed",
            objective_metric_name="score",
            additional_metric_names=["step"],
            metrics_collector_config={"kind": "Push"},
            max_trial_count=3,
            parallel_trial_count=3,
            client=client,
        )
        tuner = TuningClient(client)
        tuner.wait_for_experiment_condition("pushed", timeout=60)
        best = tuner.get_optimal_hyperparameters("pushed")
    x = best["parameters"]["x"]
    assert best["metrics"]["score"]["max"] == pytest.approx(3 * x)
    assert best["metrics"]["score"]["latest"] == pytest.approx(3 * x)
    assert best["metrics"]["step"] == {"min": 0.0, "max": 2.0, "latest": 2.0}


def _random() -> dict[str, Any]:
    return adapt(load_example(EXAMPLES_DIR / "random.yaml"))


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda s: s["parameters"][0]["feasibleSpace"].update(
                min="0", distribution="logUniform"
            ),
            "spec.parameters[0].feasibleSpace",
        ),
        (
            lambda s: s["algorithm"].update(algorithmName="grid"),
            "spec.parameters[0].feasibleSpace.step",
        ),
        (
            lambda s: s["algorithm"].update(algorithmName="hyperopt-tpe"),
            "spec.algorithm.algorithmName",
        ),
        (
            lambda s: s.update(
                metricsCollectorSpec={
                    "collector": {"kind": "StdOut"},
                    "source": {"filter": {"metricsFormat": ["([a-z]+=(\\d"]}},
                }
            ),
            "spec.metricsCollectorSpec.source.filter.metricsFormat[0]",
        ),
        (lambda s: s.update(maxFailedTrialCount=20), "spec.maxFailedTrialCount"),
    ],
)
def test_bad_experiments_are_rejected_at_apply_time(
    server: RunningServer, mutate: Any, field: str
) -> None:
    body = _random()
    body["metadata"]["name"] = "bad"
    mutate(body["spec"])
    with server.client() as client, pytest.raises(InvalidError) as info:
        client.create(body)
    assert any(c.field.startswith(field) for c in info.value.causes), info.value.causes
    assert field.split("[")[0].split(".")[-1] in str(info.value) or field in str(info.value)


def test_raising_max_trial_count_resumes_a_long_running_experiment(server: RunningServer) -> None:
    body = _random()
    body["metadata"]["name"] = "resumed"
    body["spec"].update(
        maxTrialCount=2, parallelTrialCount=2, maxFailedTrialCount=0, resumePolicy="LongRunning"
    )
    with server.client() as client:
        client.create(body)
        first = wait_finished(client, "resumed", "kubeflow")
        assert get_condition(first, "Succeeded")["reason"] == "ExperimentMaxTrialsReached"
        client.patch(
            "experiments.kubeflow.org",
            "resumed",
            {"spec": {"maxTrialCount": 4}},
            namespace="kubeflow",
        )
        exp = TuningClient(client, "kubeflow").wait_for_experiment_condition("resumed", timeout=30)
        for _ in range(100):
            exp = client.get("experiments.kubeflow.org", "resumed", "kubeflow")
            if exp["status"].get("trialsSucceeded") == 4 and get_condition(exp, "Succeeded"):
                break
            import time

            time.sleep(0.1)
        trials = trials_of(client, "resumed", "kubeflow")
    assert exp["status"]["trialsSucceeded"] == 4 == len(trials)
    assert get_condition(exp, "Succeeded")["status"] == "True"


def test_never_policy_cannot_be_resumed(server: RunningServer) -> None:
    body = _random()
    body["metadata"]["name"] = "never"
    body["spec"].update(maxTrialCount=1, parallelTrialCount=1, maxFailedTrialCount=0)
    with server.client() as client:
        client.create(body)
        wait_finished(client, "never", "kubeflow")
        with pytest.raises(InvalidError):
            client.patch(
                "experiments.kubeflow.org",
                "never",
                {"spec": {"maxTrialCount": 3}},
                namespace="kubeflow",
            )


def test_goal_reached_stops_running_trials(server: RunningServer) -> None:
    body = _random()
    body["metadata"]["name"] = "goal"
    container = body["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    # Trials with lr below 0.03 finish at once with loss 0; the others run for a minute.
    container["command"] = [
        "sh",
        "-c",
        "echo m=${trialParameters.momentum}; "
        'case "${trialParameters.learningRate}" in 0.01*|0.02*) echo loss=0;; '
        "*) sleep 60; echo loss=1;; esac",
    ]
    body["spec"].update(maxTrialCount=12, parallelTrialCount=4)
    body["spec"]["objective"]["goal"] = 0.0
    with server.client() as client:
        client.create(body)
        exp = wait_finished(client, "goal", "kubeflow", timeout=30)
        assert get_condition(exp, "Succeeded")["reason"] == "ExperimentGoalReached"
        import time

        for _ in range(100):
            trials = trials_of(client, "goal", "kubeflow")
            if all(
                any(
                    c["status"] == "True" and c["type"] in ("Succeeded", "Killed")
                    for c in t["status"]["conditions"]
                )
                for t in trials
            ):
                break
            time.sleep(0.1)
    states = {c["type"] for t in trials for c in t["status"]["conditions"] if c["status"] == "True"}
    assert "Running" not in states
