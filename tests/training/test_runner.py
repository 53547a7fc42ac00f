"""The v1 gang runner with the real LocalExecutor: real processes, real sockets on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowyard.executors.base import ProcessState
from flowyard.executors.local import LocalExecutor
from flowyard.training.runner import GangRunner

from .helpers import cond, drive, finished, is_true, replica, stored


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    ex = LocalExecutor(tmp_path / "executor", cpu=8, grace_seconds=1.0)
    ex.recover()
    yield ex
    ex.shutdown(kill=True)


@pytest.fixture
def runner(executor: LocalExecutor) -> GangRunner:
    return GangRunner(executor, grace_seconds=1.0)


def v1(kind: str, field: str, replicas: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return stored(
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": kind,
            "metadata": {"name": kind.lower()},
            "spec": {field: replicas, **spec},
        }
    )


def assert_nothing_runs(executor: LocalExecutor, job: dict[str, Any]) -> None:
    for proc in executor.list({"flowyard.io/uid": job["metadata"]["uid"]}):
        if not proc.state.finished:
            executor.wait(proc.name, timeout=10)
        assert executor.status(proc.name).state.finished, proc.name


TF_CHECK = """
import json, os, socket
config = json.loads(os.environ["TF_CONFIG"])
task = config["task"]
assert config["environment"] == "cloud"
assert sorted(config["cluster"]) == ["chief", "worker"], config
assert len(config["cluster"]["worker"]) == 2
host, port = config["cluster"][task["type"]][task["index"]].split(":")
socket.create_server((host, int(port))).close()  # our own endpoint is bindable
print("ok", task)
"""


def test_tfjob_gets_tf_config(runner: GangRunner, executor: LocalExecutor) -> None:
    job = v1(
        "TFJob",
        "tfReplicaSpecs",
        {"Chief": replica("tensorflow", TF_CHECK), "Worker": replica("tensorflow", TF_CHECK, 2)},
    )
    drive(runner.sync, job, finished)
    assert is_true(job["status"], "Succeeded"), job["status"]
    assert cond(job["status"], "Succeeded")["reason"] == "TFJobSucceeded"
    for proc in executor.list({"flowyard.io/uid": job["metadata"]["uid"]}):
        # Replicas still running at success get time to end on their own (drain_seconds).
        proc = executor.wait(proc.name, timeout=20)
        assert proc.state == ProcessState.SUCCEEDED, Path(proc.log_path).read_text()


XGB_MASTER = """
import os, socket
world = int(os.environ["WORLD_SIZE"]); assert os.environ["RANK"] == "0"
server = socket.create_server((os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])))
server.settimeout(30)
ranks = set()
while len(ranks) < world - 1:
    conn, _ = server.accept()
    ranks.add(int(conn.recv(16).decode())); conn.close()
assert ranks == set(range(1, world)), ranks
print("tracker saw", sorted(ranks))
"""
XGB_WORKER = """
import os, socket, time
addrs = os.environ["WORKER_ADDRS"].split(",")
assert len(addrs) == int(os.environ["WORLD_SIZE"]) - 1
me = addrs[int(os.environ["RANK"]) - 1]
socket.create_server((me, int(os.environ["WORKER_PORT"]))).close()
end = time.time() + 30
while True:
    try:
        s = socket.create_connection((os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])))
        break
    except OSError:
        assert time.time() < end; time.sleep(0.1)
s.sendall(os.environ["RANK"].encode()); s.close()
"""


def test_xgboostjob_env_rendezvous(runner: GangRunner, executor: LocalExecutor) -> None:
    job = v1(
        "XGBoostJob",
        "xgbReplicaSpecs",
        {"Master": replica("xgboost", XGB_MASTER), "Worker": replica("xgboost", XGB_WORKER, 2)},
    )
    drive(runner.sync, job, finished)
    assert is_true(job["status"], "Succeeded"), job["status"]
    assert job["status"]["replicaStatuses"]["Worker"]["succeeded"] == 2


CRASH_ONCE = """
import os, pathlib, signal, time
flag = pathlib.Path("crashed-once")
if os.environ["RANK"] == "1" and not flag.exists():
    flag.write_text("x")
    os.kill(os.getpid(), signal.SIGKILL)   # exit code 137, as the OOM killer would
time.sleep(0.5)
"""
SLEEP = "import time; time.sleep(300)"


def test_exit_137_restarts_under_exit_code(runner: GangRunner, executor: LocalExecutor) -> None:
    job = v1(
        "PyTorchJob",
        "pytorchReplicaSpecs",
        {
            "Master": replica("pytorch", CRASH_ONCE, policy="ExitCode"),
            "Worker": replica("pytorch", CRASH_ONCE, policy="ExitCode"),
        },
    )
    results = drive(runner.sync, job, finished)
    assert is_true(job["status"], "Succeeded"), job["status"]
    assert job["status"]["flowyard"]["restarts"] == 1
    assert (
        "Warning",
        "PyTorchJobRestarting",
        "PyTorchJob pytorchjob is restarting because 1 Worker replica(s) failed.",
    ) in [e for r in results for e in r.events]
    attempts = {
        p.labels["flowyard.io/attempt"]
        for p in executor.list({"flowyard.io/uid": job["metadata"]["uid"]})
    }
    assert attempts == {"1", "2"}


def test_exit_137_fails_under_never_and_stops_the_rest(
    runner: GangRunner, executor: LocalExecutor
) -> None:
    job = v1(
        "PyTorchJob",
        "pytorchReplicaSpecs",
        {
            "Master": replica("pytorch", SLEEP, policy="Never"),
            "Worker": replica("pytorch", CRASH_ONCE, policy="Never"),
        },
    )
    drive(runner.sync, job, finished)
    failed = cond(job["status"], "Failed")
    assert failed and failed["reason"] == "PyTorchJobFailed"
    assert (
        failed["message"] == "PyTorchJob pytorchjob is failed because 1 Worker replica(s) failed."
    )
    assert_nothing_runs(executor, job)


def test_exit_code_policy_fails_on_permanent_code(runner: GangRunner) -> None:
    job = v1(
        "PyTorchJob",
        "pytorchReplicaSpecs",
        {"Master": replica("pytorch", "raise SystemExit(3)", policy="ExitCode")},
    )
    drive(runner.sync, job, finished)
    assert cond(job["status"], "Failed")["message"] == (
        'job "pytorchjob" is failing because "Master" replica(s) failed.'
    )


def test_backoff_limit(runner: GangRunner) -> None:
    job = v1(
        "PyTorchJob",
        "pytorchReplicaSpecs",
        {"Master": replica("pytorch", "raise SystemExit(1)", policy="OnFailure")},
        runPolicy={"backoffLimit": 2},
    )
    drive(runner.sync, job, finished)
    assert job["status"]["flowyard"]["restarts"] == 2
    assert "reached the specified backoff limit" in cond(job["status"], "Failed")["message"]


def test_active_deadline_kills_a_hung_job(runner: GangRunner, executor: LocalExecutor) -> None:
    job = v1(
        "PyTorchJob",
        "pytorchReplicaSpecs",
        {"Master": replica("pytorch", SLEEP), "Worker": replica("pytorch", SLEEP)},
        runPolicy={"activeDeadlineSeconds": 2},
    )
    drive(runner.sync, job, finished, timeout=30)
    assert cond(job["status"], "Failed")["message"] == (
        "Job pytorchjob has failed because it was active longer than specified deadline"
    )
    assert_nothing_runs(executor, job)


def test_suspend_and_resume(runner: GangRunner, executor: LocalExecutor) -> None:
    job = v1("PyTorchJob", "pytorchReplicaSpecs", {"Master": replica("pytorch", SLEEP)})
    drive(runner.sync, job, lambda s: is_true(s, "Running"), timeout=20)
    job["spec"]["runPolicy"]["suspend"] = True
    drive(runner.sync, job, lambda s: is_true(s, "Suspended"))
    assert cond(job["status"], "Running")["status"] == "False"
    assert_nothing_runs(executor, job)
    job["spec"]["runPolicy"]["suspend"] = False
    drive(runner.sync, job, lambda s: is_true(s, "Running"), timeout=20)
    assert cond(job["status"], "Suspended")["reason"] == "PyTorchJobResumed"
    assert job["status"]["flowyard"]["attempt"] == 2
    runner.teardown(job)
    assert_nothing_runs(executor, job)


def test_ttl_and_clean_pod_policy(runner: GangRunner, executor: LocalExecutor) -> None:
    job = v1(
        "PyTorchJob",
        "pytorchReplicaSpecs",
        {"Master": replica("pytorch", "pass")},
        runPolicy={"ttlSecondsAfterFinished": 0, "cleanPodPolicy": "All"},
    )
    results = drive(runner.sync, job, finished)
    assert results[-1].delete is True
    assert executor.list({"flowyard.io/uid": job["metadata"]["uid"]}) == []


def test_gang_that_cannot_fit_fails_clearly(tmp_path: Path) -> None:
    small = LocalExecutor(tmp_path / "small", cpu=1, grace_seconds=1.0)
    small.recover()
    try:
        job = v1(
            "PyTorchJob",
            "pytorchReplicaSpecs",
            {
                "Master": replica("pytorch", "pass", resources={"requests": {"cpu": "1"}}),
                "Worker": replica("pytorch", "pass", resources={"requests": {"cpu": "1"}}),
            },
        )
        drive(GangRunner(small).sync, job, finished)
        assert "cannot start" in cond(job["status"], "Failed")["message"]
    finally:
        small.shutdown(kill=True)
