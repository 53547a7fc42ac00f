"""Fixtures for the pipeline engine tests: a real LocalExecutor and a helper that compiles a
``@dsl.pipeline`` function with the real kfp SDK and runs it to the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowyard.executors.local import LocalExecutor
from flowyard.pipelines import PipelineIR, PipelineRun, from_function

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
