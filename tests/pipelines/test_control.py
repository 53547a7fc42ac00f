"""Run control: terminate, retry of a failed run, snapshot/resume, deadlines, bad steps."""

import json
import time
from pathlib import Path

import pytest
from kfp import dsl

from flowyard.errors import ConflictError, InvalidError
from flowyard.executors.local import LocalExecutor
from flowyard.pipelines import PipelineRun, from_function, load_dict

from .conftest import RunFn, log_of, task

IMG = "python:3.11"


@dsl.component(base_image=IMG)
def sleeper(seconds: float, pidfile: str) -> None:
    import os
    import time

    with open(pidfile, "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(seconds)


@dsl.component(base_image=IMG)
def quick(x: int) -> int:
    return x + 1


@dsl.pipeline
def long_running(pidfile: str) -> None:
    s = sleeper(seconds=120.0, pidfile=pidfile).set_caching_options(False)
    quick(x=1).after(s)


def _wait_for(path: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def test_terminate_kills_running_steps(executor: LocalExecutor, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    run = PipelineRun(from_function(long_running), {"pidfile": str(pidfile)}, executor=executor)
    end = time.monotonic() + 60
    while not pidfile.exists() or not pidfile.read_text():
        run.step()
        assert time.monotonic() < end
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    run.terminate(grace_seconds=1.0)
    snap = run.run_until_done(timeout=30)
    assert snap["phase"] == "Canceled"
    assert task(snap, "sleeper")["state"] == "Canceled"
    assert task(snap, "quick")["state"] == "Canceled"
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    """Running and not a zombie (an orphan may wait for init to reap it)."""
    import psutil

    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        time.sleep(0.05)
    return True


@dsl.component(base_image=IMG)
def maybe_fail(flag: str) -> str:
    import os

    if not os.path.exists(flag):
        raise SystemExit("flag missing")
    return "ok"


@dsl.component(base_image=IMG)
def counted(marker: str, tag: str) -> str:
    with open(marker, "a") as fh:
        fh.write(tag + "\n")
    return tag


@dsl.pipeline
def retryable(flag: str, marker: str) -> str:
    a = counted(marker=marker, tag="a").set_caching_options(False)
    b = maybe_fail(flag=flag).after(a).set_caching_options(False)
    return counted(marker=marker, tag="c").after(b).set_caching_options(False).output


def test_retry_reruns_only_failed_and_skipped(executor: LocalExecutor, tmp_path: Path) -> None:
    flag, marker = tmp_path / "flag", tmp_path / "marker"
    params = {"flag": str(flag), "marker": str(marker)}
    run = PipelineRun(from_function(retryable), params, executor=executor)
    snap = run.run_until_done(60)
    assert snap["phase"] == "Failed" and snap["failedTasks"] == ["maybe-fail"]
    assert task(snap, "counted-2")["state"] == "Skipped"
    with pytest.raises(ConflictError):
        PipelineRun(from_function(retryable), params, executor=executor).retry()
    flag.write_text("now")
    run.retry()
    snap = run.run_until_done(60)
    assert snap["phase"] == "Succeeded", snap["message"]
    assert marker.read_text().split() == ["a", "c"]  # 'a' did not run again
    assert snap["outputs"]["parameters"]["Output"] == "c"


def test_snapshot_is_json_and_resumes(executor: LocalExecutor, tmp_path: Path) -> None:
    flag, marker = tmp_path / "flag", tmp_path / "marker"
    flag.write_text("x")
    ir = from_function(retryable)
    run = PipelineRun(ir, {"flag": str(flag), "marker": str(marker)}, executor=executor)
    end = time.monotonic() + 60
    while (
        "maybe-fail" not in run.snapshot()["tasks"] or run.task("counted")["state"] != "Succeeded"
    ):
        run.step()
        assert time.monotonic() < end
        time.sleep(0.02)
    stored = json.loads(json.dumps(run.snapshot()))
    run.close()
    resumed = PipelineRun.from_snapshot(ir, stored, executor=executor)
    snap = resumed.run_until_done(60)
    assert snap["phase"] == "Succeeded", snap["message"]
    assert marker.read_text().split() == ["a", "c"]


def test_deadline_from_platform_spec_fails_the_task(run_pipeline: RunFn, tmp_path: Path) -> None:
    ir = from_function(long_running)
    label = ir.components["comp-sleeper"]["executorLabel"]
    ir.platform = {
        "platforms": {
            "kubernetes": {"deploymentSpec": {"executors": {label: {"activeDeadlineSeconds": 1}}}}
        }
    }
    snap = run_pipeline(ir, {"pidfile": str(tmp_path / "p")}, timeout=60)
    assert snap["phase"] == "Failed"
    assert task(snap, "sleeper")["reason"] == "DeadlineExceeded"
    assert task(snap, "quick")["state"] == "Skipped"


@dsl.component(base_image=IMG)
def noisy() -> None:
    import sys

    chunk = "x" * 1023 + "\n"
    for _ in range(20 * 1024):  # 20 MiB
        sys.stdout.write(chunk)


@dsl.pipeline
def noisy_pipeline() -> None:
    noisy().set_caching_options(False)


def test_step_printing_a_lot_is_fine(run_pipeline: RunFn) -> None:
    snap = run_pipeline(noisy_pipeline)
    assert snap["phase"] == "Succeeded", snap["message"]
    assert Path(task(snap, "noisy")["logPath"]).stat().st_size > 20 * 1024 * 1024


def test_crashing_step_names_the_task(run_pipeline: RunFn) -> None:
    @dsl.component(base_image=IMG)
    def crash() -> None:
        import os

        os.abort()

    @dsl.pipeline
    def crashing() -> None:
        crash().set_caching_options(False)

    snap = run_pipeline(crashing)
    assert snap["phase"] == "Failed"
    assert "task 'crash' failed" in snap["message"]
    assert task(snap, "crash")["exitCode"] == 128 + 6


def test_bad_parameters_are_refused_before_running(executor: LocalExecutor) -> None:
    ir = from_function(retryable)
    with pytest.raises(InvalidError, match="missing required parameter 'marker'"):
        PipelineRun(ir, {"flag": "x"}, executor=executor)
    with pytest.raises(InvalidError, match="gs:// is not supported"):
        PipelineRun(ir, {"flag": "x", "marker": "y"}, executor=executor, pipeline_root="gs://b/p")
    assert load_dict(ir.to_documents()).name == ir.name


def test_preamble_skipped_and_logs_per_task(run_pipeline: RunFn) -> None:
    @dsl.pipeline
    def one() -> int:
        return quick(x=41).output

    snap = run_pipeline(one)
    node = task(snap, "quick")
    assert snap["outputs"]["parameters"]["Output"] == 42
    assert node["preambleSkipped"] is True
    assert "pip install" not in log_of(snap, "quick")
    assert "/logs/pipelines/" in node["logPath"]
    assert node["startedAt"] <= node["finishedAt"]
