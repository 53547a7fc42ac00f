"""Fixtures for the pipeline engine tests: a real LocalExecutor, a helper that compiles a
``@dsl.pipeline`` function with the real kfp SDK and runs it to the end, and the kill -9
sequence of the restart tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowyard.executors.local import LocalExecutor
from flowyard.pipelines import PipelineIR, PipelineRun, from_function
from tests.support.server import RunningServer

RunFn = Callable[..., dict[str, Any]]


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    ex = LocalExecutor(tmp_path / "executor-state", grace_seconds=1.0)
    ex.recover()
    yield ex
    ex.shutdown(kill=True)


@pytest.fixture
def run_pipeline(executor: LocalExecutor) -> RunFn:
    """``run_pipeline(func_or_ir, params=None, timeout=120, **PipelineRun kwargs)`` -> snapshot."""

    def run(
        pipeline: Any,
        params: dict[str, Any] | None = None,
        timeout: float = 120,
        **kwargs: Any,
    ) -> dict[str, Any]:
        ir = pipeline if isinstance(pipeline, PipelineIR) else from_function(pipeline)
        snap = PipelineRun(ir, params, executor=executor, **kwargs).run_until_done(timeout)
        assert snap["phase"] in ("Succeeded", "Failed", "Canceled"), snap["phase"]
        return snap

    return run


def task(snap: dict[str, Any], task_id: str) -> dict[str, Any]:
    """One task node of a run snapshot."""
    node: dict[str, Any] = snap["tasks"][task_id]
    return node


def log_of(snap: dict[str, Any], task_id: str) -> str:
    """The task's log; for a cache hit on a task of the same run, that task's log too."""
    node = task(snap, task_id)
    text = Path(node["logPath"]).read_text()
    source = node.get("cachedFrom") or {}
    if source.get("runId") == snap["runId"]:
        text += log_of(snap, source["taskId"])
    return text


def kill9_while_step_runs(server: RunningServer, markers: Path, step: str) -> None:
    """Wait until ``step`` has written ``<markers>/<step>.start``, kill -9 the server while the
    step still runs (its ``.end`` marker is not there yet), and start the server again."""
    deadline = time.monotonic() + 60
    while not (markers / f"{step}.start").exists():
        assert time.monotonic() < deadline, f"step {step} never started"
        time.sleep(0.05)
    server.kill9()
    assert not (markers / f"{step}.end").exists()  # killed while the step was running
    server.start()
