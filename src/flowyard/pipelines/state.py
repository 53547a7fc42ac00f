"""Run and task state of the pipeline engine, as plain JSON-serializable dicts.

A run's state (``PipelineRun.snapshot()``) is one dict that a controller can store as the Run
resource's ``status`` and hand back to ``PipelineRun.from_snapshot`` to resume::

    {runId, runName, pipelineName, namespace, phase, message, createdAt, startedAt, finishedAt,
     parameters, pipelineRoot, runDir, workspace, enableCaching, python, maxParallel,
     outputs: {parameters, artifacts}, failedTasks: [...], tasks: {<task id>: <node>}}

Each node is one instance of a pipeline task: the root DAG (id ``""``), a sub-DAG (a nested
pipeline, a ``dsl.If`` branch, an ``ExitHandler`` group), a ``ParallelFor`` (kind ``loop``) and
its iterations (kind ``iteration``, id ``<loop id>/iteration-<i>``), a container step or an
importer. Ids are paths of task names (``exit-handler-1/for-loop-2/iteration-0/train``).

Task states: Pending -> Running -> Succeeded | Cached | Failed | Skipped | Canceled.
``Skipped`` carries a reason: ``ConditionNotMet`` (its ``dsl.If`` was false; counts as done for
dependents), ``UpstreamFailed`` or ``RunTerminated``.
"""

from __future__ import annotations

import time
from typing import Any

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
CACHED = "Cached"
FAILED = "Failed"
SKIPPED = "Skipped"
CANCELED = "Canceled"
FINAL_STATES = frozenset({SUCCEEDED, CACHED, FAILED, SKIPPED, CANCELED})

CONDITION_NOT_MET = "ConditionNotMet"
UPSTREAM_FAILED = "UpstreamFailed"
RUN_TERMINATED = "RunTerminated"

# run phases
PHASE_PENDING = "Pending"
PHASE_RUNNING = "Running"
PHASE_SUCCEEDED = "Succeeded"
PHASE_FAILED = "Failed"
PHASE_CANCELING = "Canceling"
PHASE_CANCELED = "Canceled"
FINAL_PHASES = frozenset({PHASE_SUCCEEDED, PHASE_FAILED, PHASE_CANCELED})

ROOT_ID = ""
KIND_ROOT = "root"
KIND_DAG = "dag"
KIND_LOOP = "loop"
KIND_ITERATION = "iteration"
KIND_CONTAINER = "container"
KIND_IMPORTER = "importer"
GROUP_KINDS = frozenset({KIND_ROOT, KIND_DAG, KIND_LOOP, KIND_ITERATION})


def child_id(parent_id: str, name: str) -> str:
    return f"{parent_id}/{name}" if parent_id else name


def new_node(
    node_id: str, name: str, parent: str | None, kind: str, component: str
) -> dict[str, Any]:
    return {
        "id": node_id,
        "name": name,
        "parent": parent,
        "kind": kind,
        "component": component,
        "state": PENDING,
        "reason": "",
        "message": "",
        "inputs": {"parameters": {}, "artifacts": {}},
        "outputs": {"parameters": {}, "artifacts": {}},
        "children": [],
        "attempt": 0,
        "startedAt": None,
        "finishedAt": None,
    }


def is_final(node: dict[str, Any]) -> bool:
    return node["state"] in FINAL_STATES


def is_ok(node: dict[str, Any]) -> bool:
    """Finished in a way that lets ALL_UPSTREAM_TASKS_SUCCEEDED dependents run."""
    state = node["state"]
    return state in (SUCCEEDED, CACHED) or (
        state == SKIPPED and node["reason"] == CONDITION_NOT_MET
    )


def finish(node: dict[str, Any], state: str, reason: str = "", message: str = "") -> None:
    node["state"] = state
    node["reason"] = reason
    node["message"] = message
    now = time.time()
    node["finishedAt"] = now
    if node.get("startedAt"):
        node["durationSeconds"] = round(now - node["startedAt"], 6)


def final_status_state(node: dict[str, Any]) -> str:
    """KFP's ``PipelineTaskFinalStatus.state`` spelling of a node's state."""
    if node["state"] in (SUCCEEDED, CACHED) or is_ok(node):
        return "SUCCEEDED"
    if node["state"] == CANCELED or node["reason"] == RUN_TERMINATED:
        return "CANCELED"
    return "FAILED"
