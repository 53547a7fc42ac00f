"""TrainJob (Trainer v2) through TrainJobRunner and the LocalExecutor, without torch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from flowyard.executors.local import LocalExecutor
from flowyard.training.trainjob import effective_runtime_spec
from flowyard.training.trainjob_runner import TrainJobRunner

from .helpers import PY, cond, drive, is_true, stored

V2 = "trainer.kubeflow.org/v1alpha1"
CHECK = """
import os, pathlib
assert os.environ["JOB_COMPLETION_INDEX"] in ("0", "1")
assert pathlib.Path(os.environ["DATASET_PATH"], "train.csv").read_text() == "a,b\\n"
assert pathlib.Path(os.environ["MODEL_PATH"], "weights.bin").read_bytes() == b"w" * 10
print("node", os.environ["JOB_COMPLETION_INDEX"], "ok")
"""


def plain_runtime(max_restarts: int = 0) -> dict[str, Any]:
    return stored(
        {
            "apiVersion": V2,
            "kind": "TrainingRuntime",
            "metadata": {"name": "plain"},
            "spec": {
                "mlPolicy": {"numNodes": 1},
                "template": {
                    "spec": {
                        "failurePolicy": {"maxRestarts": max_restarts},
                        "replicatedJobs": [
                            {
                                "name": "node",
                                "template": {
                                    "spec": {
                                        "template": {
                                            "spec": {
                                                "containers": [
                                                    {
                                                        "name": "node",
                                                        "image": "local",
                                                        "command": [PY, "-c", "pass"],
                                                    }
                                                ]
                                            }
                                        }
                                    }
                                },
                            }
                        ],
                    }
                },
            },
        }
    )


def trainjob(code: str, **spec: Any) -> dict[str, Any]:
    return stored(
        {
            "apiVersion": V2,
            "kind": "TrainJob",
            "metadata": {"name": "tj"},
            "spec": {
                "runtimeRef": {"kind": "TrainingRuntime", "name": "plain"},
                "trainer": {"numNodes": 2, "command": [PY, "-c", code]},
                **spec,
            },
        }
    )


def done(status: dict[str, Any]) -> bool:
    return is_true(status, "Complete") or is_true(status, "Failed")


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    ex = LocalExecutor(tmp_path / "executor", grace_seconds=1.0)
    ex.recover()
    yield ex
    ex.shutdown(kill=True)


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "served"
    root.mkdir()
    (root / "weights.bin").write_bytes(b"w" * 10)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def runner_for(executor: LocalExecutor, runtime: dict[str, Any]) -> TrainJobRunner:
    def lookup(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return runtime if (kind, name) == (runtime["kind"], runtime["metadata"]["name"]) else None

    return TrainJobRunner(executor, lookup, grace_seconds=1.0)


def test_initializers_then_trainer(executor: LocalExecutor, http_dir: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("a,b\n")
    job = trainjob(
        CHECK,
        initializer={
            "dataset": {"storageUri": f"file://{data}"},
            "model": {"storageUri": f"{http_dir}/weights.bin"},
        },
    )
    drive(runner_for(executor, plain_runtime()).sync, job, done)
    logs = {p.name: Path(p.log_path).read_text() for p in executor.list()}
    assert is_true(job["status"], "Complete"), (job["status"], logs)
    names = [j["name"] for j in job["status"]["jobsStatus"]]
    assert names == ["model-initializer", "dataset-initializer", "node"]
    node = job["status"]["jobsStatus"][-1]
    assert node["succeeded"] == 2 and node["failed"] == 0


def test_failed_node_fails_and_restarts_per_failure_policy(executor: LocalExecutor) -> None:
    job = trainjob("raise SystemExit(2)")
    drive(runner_for(executor, plain_runtime()).sync, job, done)
    assert cond(job["status"], "Failed")["reason"] == "FailedJobs"
    job = trainjob("raise SystemExit(2)")
    job["metadata"]["name"] = "tj2"
    drive(runner_for(executor, plain_runtime(max_restarts=1)).sync, job, done)
    assert cond(job["status"], "Failed")["reason"] == "ReachedMaxRestarts"
    assert job["status"]["flowyard"]["restarts"] == 1


def test_missing_runtime_and_deadline_and_suspend(executor: LocalExecutor) -> None:
    job = trainjob("pass")
    job["spec"]["runtimeRef"]["name"] = "missing"
    drive(runner_for(executor, plain_runtime()).sync, job, done)
    failed = cond(job["status"], "Failed")
    assert (
        failed["reason"] == "TrainingRuntimeNotFound" and '"missing" not found' in failed["message"]
    )
    hung = trainjob("import time; time.sleep(300)", activeDeadlineSeconds=2)
    drive(runner_for(executor, plain_runtime()).sync, hung, done, timeout=30)
    assert cond(hung["status"], "Failed")["reason"] == "DeadlineExceeded"
    suspended = trainjob("pass", suspend=True)
    runner = runner_for(executor, plain_runtime())
    drive(runner.sync, suspended, lambda s: is_true(s, "Suspended"))
    assert cond(suspended["status"], "Suspended")["message"] == "TrainJob is suspended"
    assert executor.list({"flowyard.io/uid": suspended["metadata"]["uid"]}) == []
    suspended["spec"]["suspend"] = False
    drive(runner.sync, suspended, done)
    assert cond(suspended["status"], "Suspended")["reason"] == "Resumed"
    assert is_true(suspended["status"], "Complete")


def test_runtime_patches_merge_by_name() -> None:
    runtime = plain_runtime()
    job = trainjob(
        "pass",
        runtimePatches=[
            {
                "manager": "me",
                "trainingRuntimeSpec": {
                    "template": {
                        "spec": {
                            "replicatedJobs": [
                                {
                                    "name": "node",
                                    "template": {
                                        "spec": {
                                            "template": {
                                                "spec": {
                                                    "containers": [
                                                        {
                                                            "name": "node",
                                                            "env": [{"name": "X", "value": "1"}],
                                                        }
                                                    ]
                                                }
                                            }
                                        }
                                    },
                                }
                            ]
                        }
                    }
                },
            }
        ],
    )
    spec = effective_runtime_spec(job, runtime)
    container = spec["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"][
        "spec"
    ]["containers"][0]
    assert container["env"] == [{"name": "X", "value": "1"}]
    assert container["command"][0] == PY  # kept from the runtime
