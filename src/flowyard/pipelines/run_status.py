"""The ``status`` of a ``pipelines.kubeflow.org/v2beta1 Run``, computed from an engine snapshot.

The engine's phases and task states map onto KFP's ``V2beta1RuntimeState``; the task list is
KFP's ``runDetails.taskDetails`` (camelCase) plus flowyard's extras. See ``kinds.py`` for the
whole shape.
"""

from __future__ import annotations

import datetime
from typing import Any

from flowyard.pipelines import state as st
from flowyard.resources.conditions import set_condition
from flowyard.resources.meta import Resource, now_iso

PHASE_TO_STATE = {
    st.PHASE_PENDING: "PENDING",
    st.PHASE_RUNNING: "RUNNING",
    st.PHASE_SUCCEEDED: "SUCCEEDED",
    st.PHASE_FAILED: "FAILED",
    st.PHASE_CANCELING: "CANCELING",
    st.PHASE_CANCELED: "CANCELED",
}
TASK_STATE = {
    st.PENDING: "PENDING",
    st.RUNNING: "RUNNING",
    st.SUCCEEDED: "SUCCEEDED",
    st.CACHED: "SKIPPED",  # KFP reports cache hits as SKIPPED (with the outputs of the hit)
    st.FAILED: "FAILED",
    st.SKIPPED: "SKIPPED",
    st.CANCELED: "CANCELED",
}


def iso(ts: float | None) -> str | None:
    if not ts:
        return None
    when = datetime.datetime.fromtimestamp(float(ts), datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def task_signature(snapshot: dict[str, Any]) -> tuple[Any, ...]:
    """What changes when any task changes state (status writes are not throttled then)."""
    tasks = snapshot.get("tasks") or {}
    return (
        snapshot.get("phase"),
        tuple(sorted((tid, n["state"], n.get("attempt", 0)) for tid, n in tasks.items())),
    )


def task_details(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """KFP's ``PipelineTaskDetail`` list, in start order (pending tasks last)."""
    run_id = snapshot.get("runId", "")
    tasks = snapshot.get("tasks") or {}
    out = []
    for tid, node in tasks.items():
        if tid == st.ROOT_ID:
            continue
        detail: dict[str, Any] = {
            "runId": run_id,
            "taskId": tid,
            "displayName": node["name"],
            "name": node["name"],
            "kind": node["kind"],
            "parentTaskId": node.get("parent") or None,
            "state": TASK_STATE.get(node["state"], "PENDING"),
            "flowyardState": node["state"],
            "reason": node.get("reason") or "",
            "createTime": iso(snapshot.get("createdAt")),
            "startTime": iso(node.get("startedAt")),
            "endTime": iso(node.get("finishedAt")),
            "durationSeconds": node.get("durationSeconds"),
            "attempt": node.get("attempt", 0),
            "cached": node["state"] == st.CACHED,
            "inputs": node.get("inputs") or {},
            "outputs": node.get("outputs") or {},
            "childTasks": [{"taskId": c} for c in node.get("children") or []],
        }
        if node["state"] == st.FAILED:
            detail["error"] = {"code": 2, "message": node.get("message") or node.get("reason")}
        elif node.get("message"):
            detail["message"] = node["message"]
        for key in ("image", "logPath", "exitCode", "cachedFrom"):
            if node.get(key) is not None:
                detail[key] = node[key]
        out.append(detail)
    out.sort(key=lambda d: (d["startTime"] is None, d["startTime"] or "", d["taskId"]))
    return out


def apply_snapshot(run: Resource, snapshot: dict[str, Any]) -> None:
    """Write the snapshot and everything derived from it into ``run['status']`` in place."""
    status = run.setdefault("status", {})
    state = PHASE_TO_STATE.get(snapshot["phase"], "PENDING")
    _history(status, state)
    status.update(
        state=state,
        pipelineName=snapshot.get("pipelineName"),
        startTime=iso(snapshot.get("startedAt")),
        finishTime=iso(snapshot.get("finishedAt")),
        failedTasks=list(snapshot.get("failedTasks") or []),
        outputs=snapshot.get("outputs") or {},
        runDetails={"taskDetails": task_details(snapshot)},
        engine=snapshot,
    )
    status.pop("error", None)
    message = snapshot.get("message") or ""
    if state == "FAILED":
        status["error"] = {"code": 2, "message": message or "the run failed"}
    _conditions(run, state, message)


def set_state(run: Resource, state: str, reason: str, message: str) -> None:
    """A state set without an engine (e.g. the IR could not be resolved)."""
    status = run.setdefault("status", {})
    _history(status, state)
    status["state"] = state
    if state == "FAILED":
        status["error"] = {"code": 3, "message": message}
        status.setdefault("finishTime", now_iso())
    _conditions(run, state, message, reason)


def _history(status: dict[str, Any], state: str) -> None:
    history = status.setdefault("stateHistory", [])
    if not history or history[-1].get("state") != state:
        history.append({"state": state, "updateTime": now_iso()})


def _conditions(run: Resource, state: str, message: str, reason: str = "") -> None:
    running = state in ("PENDING", "RUNNING", "CANCELING")
    set_condition(run, "Running", running, reason or state.title(), message if running else "")
    if state == "SUCCEEDED":
        set_condition(run, "Succeeded", True, "Succeeded", "all tasks finished")
        set_condition(run, "Failed", False, "Succeeded", "")
    elif state in ("FAILED", "CANCELED"):
        set_condition(
            run,
            "Failed",
            True,
            reason or ("Terminated" if state == "CANCELED" else "Failed"),
            message,
        )
        set_condition(run, "Succeeded", False, state.title(), "")
    if not running:
        return
    for kind in ("Succeeded", "Failed"):
        set_condition(run, kind, False, "Running", "")
