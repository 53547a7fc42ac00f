"""The ``argoproj.io/v1alpha1 Workflow`` controller: runs a Workflow with the local Argo engine.

Same pattern as the Run controller: one in-memory :class:`WorkflowRun` per active Workflow,
driven by the step processes' events (their labels name the Workflow), its state stored as
``status`` (throttled to every :data:`STATUS_INTERVAL` seconds unless a node changed phase) and
rebuilt from ``status`` after a restart. ``spec.shutdown: Terminate`` (or ``Stop``) terminates.
Deleting a Workflow kills its pods first (finalizer). Logs:
``FLOWYARD_HOME/logs/<ns>/workflows/<name>/<node>.log``.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from typing import Any

from flowyard import config
from flowyard.controllers.base import (
    LABEL_UID,
    Controller,
    ControllerContext,
    ObjectKey,
    Result,
    process_labels,
)
from flowyard.errors import FlowyardError, NotFoundError
from flowyard.pipelines.argo.engine import WorkflowRun
from flowyard.pipelines.kinds import WORKFLOW
from flowyard.resources.meta import Resource

FINALIZER = "workflows.argoproj.io/cleanup"
STATUS_INTERVAL = 0.2
FINAL_PHASES = frozenset({"Succeeded", "Failed", "Error"})


def _signature(status: dict[str, Any]) -> tuple[Any, ...]:
    nodes = status.get("nodes") or {}
    return (status.get("phase"), tuple(sorted((k, n["phase"]) for k, n in nodes.items())))


class WorkflowController(Controller):
    kind = WORKFLOW
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self._active: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            wf = self.store.get(WORKFLOW, key.namespace, key.name)
        except NotFoundError:
            return None
        uid = str(wf["metadata"]["uid"])
        if wf["metadata"].get("deletionTimestamp"):
            return self._delete(wf, uid)
        wf = self.add_finalizer(wf, FINALIZER)
        if (wf.get("status") or {}).get("phase") in FINAL_PHASES and uid not in self._active:
            return None
        with self._lock:
            entry = self._active.get(uid)
            if entry is None:
                ns = wf["metadata"].get("namespace") or "default"
                log_dir = config.logs_dir() / ns / WORKFLOW.plural / wf["metadata"]["name"]
                run = WorkflowRun(
                    wf,
                    executor=self.executor,
                    labels=process_labels(WORKFLOW, wf),
                    log_dir=str(log_dir),
                )
                entry = {"run": run, "sig": (), "at": 0.0, "dirty": False}
                self._active[uid] = entry
        return self._drive(wf, uid, entry)

    def _drive(self, wf: Resource, uid: str, entry: dict[str, Any]) -> Result | None:
        run: WorkflowRun = entry["run"]
        shutdown = wf["spec"].get("shutdown") in ("Terminate", "Stop")
        if shutdown and not run.done and not run.status["flowyard"].get("terminating"):
            run.terminate()
            entry["dirty"] = True
        try:
            entry["dirty"] |= run.step()
        except (FlowyardError, ValueError, KeyError) as exc:
            run.status.update(phase="Error", message=f"workflow error: {exc}")
            entry["dirty"] = True
        status = run.snapshot()
        sig = _signature(status)
        wait = STATUS_INTERVAL - (time.monotonic() - entry["at"])
        if entry["dirty"] and (sig != entry["sig"] or run.done or wait <= 0):
            new = copy.deepcopy(wf)
            new["status"] = status
            new["metadata"]["resourceVersion"] = ""
            with contextlib.suppress(NotFoundError):
                self.store.update_status(new)
            entry.update(sig=sig, at=time.monotonic(), dirty=False)
        if run.done and not entry["dirty"]:
            with self._lock:
                self._active.pop(uid, None)
            return None
        if entry["dirty"]:
            return Result(requeue_after=max(wait, 0.01))
        return Result(requeue_after=min(1.0, max(run.next_wakeup(), 0.01)))

    def _delete(self, wf: Resource, uid: str) -> Result | None:
        """Stop the steps, then release the finalizer (requeued until every step is gone)."""
        with self._lock:
            entry = self._active.pop(uid, None)
        if entry is not None:
            entry["run"].terminate()
        if not self.stop_processes({LABEL_UID: uid}):
            return Result(requeue_after=0.2)
        self.remove_finalizer(wf, FINALIZER)
        return None
