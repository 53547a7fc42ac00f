"""Run resources end to end: a real server, the CLI, the Python client, real step processes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from flowyard.errors import InvalidError
from tests.pipelines import e2e_pipelines as pipes
from tests.support.server import RunningServer

PIPELINES = Path(pipes.__file__)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("runs-home")).start()
    yield running
    running.stop()


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_cli_runs_a_py_file_and_shows_tasks_and_logs(server: RunningServer) -> None:
    done = server.cli("run", str(PIPELINES), "--pipeline", "adder", "-p", "a=5", "--name", "add5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run/add5 SUCCEEDED" in done.stdout
    with server.client() as client:
        run = client.get("runs", "add5")
    status = run["status"]
    assert status["state"] == "SUCCEEDED"
    assert status["outputs"]["parameters"] == {"Output": 17}
    details = {d["taskId"]: d for d in status["runDetails"]["taskDetails"]}
    assert details["add"]["inputs"]["parameters"] == {"a": 5, "b": 2}
    assert details["add-2"]["outputs"]["parameters"] == {"Output": 17}
    assert details["add"]["startTime"] <= details["add-2"]["startTime"]
    assert [h["state"] for h in status["stateHistory"]][-1] == "SUCCEEDED"
    got = server.cli("get", "runs")
    assert "add5" in got.stdout and "SUCCEEDED" in got.stdout
    described = server.cli("describe", "run", "add5")
    assert described.returncode == 0, described.stderr
    assert "add-2" in described.stdout and "'Output': 17" in described.stdout
    assert "executorInput" not in described.stdout  # the engine state stays out of describe
    logs = server.cli("logs", "run/add5", "-c", "add-2")
    assert logs.returncode == 0, logs.stderr
    assert "flowyard: add-2 attempt 1" in logs.stdout


def test_cli_failure_exit_code_names_task_and_logs_command(
    server: RunningServer, tmp_path: Path
) -> None:
    done = server.cli(
        "run",
        str(PIPELINES),
        "--pipeline",
        "gated",
        "-p",
        f"marker_dir={tmp_path}",
        "--name",
        "closed",
        "--no-cache",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed task gate" in done.stdout
    assert "flowyard logs run/closed -c gate" in done.stdout
    logs = server.cli("logs", "run/closed", "-c", "gate")
    assert "gate is closed" in logs.stdout


def test_python_api_and_retry_reuses_succeeded_tasks(server: RunningServer, tmp_path: Path) -> None:
    with server.client() as client:
        result = client.create_run_from_pipeline_func(
            pipes.gated, arguments={"marker_dir": str(tmp_path)}, enable_caching=False
        )
        failed = result.wait_for_run_completion(timeout=60)
        assert failed["status"]["state"] == "FAILED"
        assert failed["status"]["failedTasks"] == ["gate"]
        assert "gate" in failed["status"]["error"]["message"]
        (tmp_path / "allow").touch()
        client.retry_run(result.run_name)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = client.get("runs", result.run_name)
            if run["status"].get("observedRetry") == 1 and run["status"]["state"] == "SUCCEEDED":
                break
            time.sleep(0.2)
    assert run["status"]["state"] == "SUCCEEDED", run["status"]
    assert run["status"]["outputs"]["parameters"] == {"Output": "ok-passed"}
    assert len(lines(tmp_path / "ok.end")) == 1  # the succeeded task was not re-run
    assert len(lines(tmp_path / "gate.start")) == 2


def test_run_from_pipeline_version_reference(server: RunningServer) -> None:
    from flowyard.client.pipelines import compile_function

    ir = compile_function(pipes.adder)[0]
    with server.client() as client:
        client.create(
            {
                "apiVersion": "pipelines.kubeflow.org/v2beta1",
                "kind": "Pipeline",
                "metadata": {"name": "adder"},
                "spec": {"displayName": "Adder"},
            }
        )
        client.create(
            {
                "apiVersion": "pipelines.kubeflow.org/v2beta1",
                "kind": "PipelineVersion",
                "metadata": {"name": "adder-v1"},
                "spec": {"pipelineName": "adder", "pipelineSpec": ir},
            }
        )
        client.create(
            {
                "apiVersion": "pipelines.kubeflow.org/v2beta1",
                "kind": "Run",
                "metadata": {"name": "by-ref"},
                "spec": {
                    "pipelineVersionRef": {"pipelineName": "adder"},
                    "runtimeConfig": {"parameters": {"a": 100}},
                },
            }
        )
        run = client.wait_for_run_completion("by-ref", timeout=60)
    assert run["status"]["state"] == "SUCCEEDED"
    assert run["status"]["outputs"]["parameters"] == {"Output": 112}
    assert run["status"]["pipelineSpec"]["pipelineInfo"]["name"] == "adder"


def test_admission_names_the_bad_parameter(server: RunningServer) -> None:
    from flowyard.client.pipelines import compile_function, run_resource

    docs = compile_function(pipes.adder)
    with server.client() as client, pytest.raises(InvalidError) as caught:
        client.create(run_resource(docs, {"a": "not-a-number"}))
    assert "spec.runtimeConfig.parameters.a" in str(caught.value)
    with pytest.raises(InvalidError) as caught, server.client() as client:
        client.create(run_resource(docs, {"nope": 1}))
    assert "nope" in str(caught.value)


def _wait_started(marker: Path, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lines(marker):
            return int(lines(marker)[0])
        time.sleep(0.1)
    raise AssertionError(f"{marker} never appeared")


def _gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


def test_terminate_kills_the_step(server: RunningServer, tmp_path: Path) -> None:
    with server.client() as client:
        result = client.create_run_from_pipeline_func(
            pipes.sleeper, arguments={"marker_dir": str(tmp_path)}, enable_caching=False
        )
        pid = _wait_started(tmp_path / "slow.start")
        client.terminate_run(result.run_name)
        run = result.wait_for_run_completion(timeout=30)
    assert run["status"]["state"] == "CANCELED"
    assert _gone(pid)
    assert not (tmp_path / "slow.end").exists()


def test_delete_kills_the_steps(server: RunningServer, tmp_path: Path) -> None:
    with server.client() as client:
        result = client.create_run_from_pipeline_func(
            pipes.sleeper, arguments={"marker_dir": str(tmp_path)}, enable_caching=False
        )
        pid = _wait_started(tmp_path / "slow.start")
        client.delete("runs", result.run_name)
        assert _gone(pid)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(
            r["metadata"]["name"] == result.run_name for r in client.list("runs")
        ):
            time.sleep(0.1)
        assert all(r["metadata"]["name"] != result.run_name for r in client.list("runs"))
    assert os.path.exists(tmp_path / "slow.start")
