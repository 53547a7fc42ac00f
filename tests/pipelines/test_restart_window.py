# no `from __future__ import annotations`: kfp reads the annotations as types
"""The restart window between launching a step and recording it: the control plane launched
attempt n, died before storing that, and the rebuilt engine launches attempt n again under the
same process name. The executor hands back the existing process; the engine must adopt it
without emptying its work directory (where that process wrote its outputs)."""

import time
from pathlib import Path
from typing import Any

from kfp import dsl

from flowyard.executors.local import LocalExecutor
from flowyard.pipelines import PipelineRun, from_function
from flowyard.pipelines import launch as kfp_launch
from flowyard.pipelines.argo import pods
from flowyard.pipelines.argo.engine import WorkflowRun


@dsl.component(base_image="python:3.11")
def record(marker: str) -> str:
    with open(marker, "a") as handle:
        handle.write("ran\n")
    return "written-by-the-first-launch"


@dsl.pipeline
def one_step(marker: str) -> str:
    return record(marker=marker).output


def test_kfp_engine_adopts_the_launched_attempt_and_keeps_its_outputs(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    ir = from_function(one_step)
    marker = tmp_path / "marker"
    first = PipelineRun(ir, {"marker": str(marker)}, executor=executor, enable_caching=False)
    before_launch = first.snapshot()  # what the store holds when the control plane dies
    first.step()
    first.close()
    name = kfp_launch.process_name(first.run_id, "record", 1)
    assert executor.wait(name, timeout=60).exit_code == 0

    resumed = PipelineRun.from_snapshot(ir, before_launch, executor=executor)
    snap = resumed.run_until_done(timeout=60)

    assert snap["phase"] == "Succeeded", snap["message"]
    assert snap["outputs"]["parameters"] == {"Output": "written-by-the-first-launch"}
    assert snap["tasks"]["record"]["attempt"] == 1
    assert marker.read_text() == "ran\n"  # one process, adopted, not a second run


def _workflow(marker: Path) -> dict[str, Any]:
    script = f"echo ran >> {marker}; echo from-first-launch > /tmp/out.txt"
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "window", "uid": "uid-window"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "container": {"image": "alpine", "command": ["sh", "-c", script]},
                    "outputs": {
                        "parameters": [{"name": "out", "valueFrom": {"path": "/tmp/out.txt"}}]
                    },
                }
            ],
        },
    }


def test_argo_engine_adopts_the_launched_attempt_and_keeps_its_files(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    workflow = _workflow(marker)
    logs = str(tmp_path / "logs")
    first = WorkflowRun(workflow, executor=executor, labels={}, log_dir=logs)
    first.step()  # launches the pod; its status is never stored
    pod_id = next(n["id"] for n in first.nodes.values() if n["type"] == "Pod")
    assert executor.wait(pods.process_name("uid-window", pod_id, 1), timeout=60).exit_code == 0

    resumed = WorkflowRun(workflow, executor=executor, labels={}, log_dir=logs)
    for _ in range(600):
        resumed.step()
        if resumed.done:
            break
        time.sleep(0.05)
    status = resumed.snapshot()

    assert status["phase"] == "Succeeded", status["message"]
    pod = status["nodes"][pod_id]
    assert pod["outputs"]["parameters"] == [{"name": "out", "value": "from-first-launch"}]
    assert pod["attempt"] == 1
    assert marker.read_text() == "ran\n"
