"""kill -9 of the control plane in the middle of an experiment: the restarted one continues
the same study with no lost and no duplicated trials."""

from __future__ import annotations

import time
from pathlib import Path

from flowyard.resources.conditions import get_condition
from tests.support.server import RunningServer
from tests.tuning.conftest import EXAMPLES_DIR, load_example
from tests.tuning.support import adapt, trials_of, wait_finished

NS = "kubeflow"


def _experiment(algorithm: str, name: str) -> dict:
    body = adapt(load_example(EXAMPLES_DIR / "tpe.yaml"), maxTrialCount=8, parallelTrialCount=3)
    body["metadata"]["name"] = name
    body["spec"]["algorithm"] = {"algorithmName": algorithm}
    container = body["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    container["env"] = [{"name": "TOY_STEP_SECONDS", "value": "0.1"}]
    return body


def test_kill9_mid_experiment_continues_without_lost_or_duplicated_trials(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    first = RunningServer(home).start()
    try:
        with first.client() as client:
            client.create(_experiment("tpe", "crash-tpe"))
            client.create(_experiment("random", "crash-random"))
            deadline = time.monotonic() + 60
            while len(trials_of(client, "crash-tpe", NS)) < 4:
                assert time.monotonic() < deadline, first.output()
                time.sleep(0.05)
    finally:
        first.kill9()
    second = RunningServer(home).start()
    try:
        with second.client() as client:
            for name in ("crash-tpe", "crash-random"):
                exp = wait_finished(client, name, NS, timeout=90)
                assert get_condition(exp, "Succeeded")["reason"] == "ExperimentMaxTrialsReached"
                trials = trials_of(client, name, NS)
                suggestion = client.get("suggestions.kubeflow.org", name, NS)
                assigned = suggestion["status"]["suggestions"]
                assert len(trials) == 8 == exp["status"]["trials"]
                assert exp["status"]["trialsSucceeded"] == 8, exp["status"]
                # Every stored assignment became exactly one Trial, none twice.
                assert sorted(a["name"] for a in assigned) == sorted(
                    t["metadata"]["name"] for t in trials
                )
                keys = {
                    tuple((p["name"], p["value"]) for p in t["spec"]["parameterAssignments"])
                    for t in trials
                }
                assert len(keys) == 8
    finally:
        second.stop()
