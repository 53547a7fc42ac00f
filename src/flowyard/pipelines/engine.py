"""The pipeline engine: runs a KFP v2 IR through an executor.

Usage::

    run = PipelineRun(ir, {"a": 1}, executor=LocalExecutor())
    run.run_until_done(timeout=600)
    run.snapshot()["phase"]   # "Succeeded" | "Failed" | "Canceled"

or, from a controller, call :meth:`PipelineRun.step` whenever something may have changed (it never
blocks on a step; it returns True when it changed the state), store :meth:`snapshot` as the Run's
status, and rebuild with :meth:`PipelineRun.from_snapshot` after a restart.

Semantics (KFP's): a task starts when its upstream tasks finished; with the default trigger
strategy it is Skipped (``UpstreamFailed``) unless they all succeeded, with
``ALL_UPSTREAM_TASKS_COMPLETED`` (exit handlers, ``ignore_upstream_failure``) it runs anyway.
Independent tasks run concurrently, bounded by the executor's slots (each step asks for the
cpu/memory the IR requests) and by ``max_parallel``. A failed container task is retried per its
``retryPolicy`` (backoff ``duration * factor**(n-1)`` capped at ``backoffMaxDuration``); a run
whose tasks all ended is Succeeded, or Failed naming the failed tasks. ``terminate`` kills every
running step; ``retry`` re-runs only what failed or was skipped or canceled.
"""

from __future__ import annotations

import copy
import datetime
import os
import sys
import threading
import time
import uuid
from typing import Any

from flowyard import config
from flowyard.errors import ConflictError, NotFoundError
from flowyard.executors.base import BaseExecutor, ProcessState, ProcessStatus
from flowyard.pipelines import remote
from flowyard.pipelines import state as st
from flowyard.pipelines.cache import TaskCache
from flowyard.pipelines.groups import GroupMixin
from flowyard.pipelines.ir import ROOT, PipelineIR
from flowyard.pipelines.placeholders import RuntimeContext
from flowyard.pipelines.steps import StepMixin
from flowyard.pipelines.validate import resolve_run_parameters

_MAX_ROUNDS = 10_000


class PipelineRun(GroupMixin, StepMixin):
    """One run of a pipeline IR. Thread safe: every public method takes the run's lock."""

    def __init__(
        self,
        ir: PipelineIR,
        parameters: dict[str, Any] | None = None,
        *,
        executor: BaseExecutor,
        pipeline_root: str | None = None,
        run_id: str | None = None,
        run_name: str | None = None,
        namespace: str = "default",
        enable_caching: bool = True,
        python: str | None = None,
        max_parallel: int | None = None,
        cache: TaskCache | None = None,
        process_labels: dict[str, str] | None = None,
        log_dir: str | None = None,
        schedule_time: float | None = None,
    ) -> None:
        """``schedule_time`` (epoch seconds) is when a recurring run was due; it fills
        ``{{$.pipeline_job_schedule_time_utc}}`` (default: the creation time)."""
        resolved = resolve_run_parameters(ir, parameters or {})
        run_id = run_id or uuid.uuid4().hex[:12]
        root = remote.pipeline_root(
            pipeline_root or ir.default_pipeline_root or str(config.artifacts_dir())
        )
        run_dir = config.home() / "pipelines" / "runs" / run_id
        now = time.time()
        self._state: dict[str, Any] = {
            "runId": run_id,
            "runName": run_name or f"{ir.name}-{run_id}",
            "pipelineName": ir.name,
            "namespace": namespace,
            "phase": st.PHASE_PENDING,
            "message": "",
            "createdAt": now,
            "scheduledAt": schedule_time,
            "startedAt": None,
            "finishedAt": None,
            "parameters": resolved,
            "pipelineRoot": root,
            "runDir": str(run_dir),
            "workspace": str(run_dir / "workspace") if ir.workspace_size else None,
            "enableCaching": enable_caching,
            "python": python or sys.executable,
            "maxParallel": max_parallel,
            "outputs": {"parameters": {}, "artifacts": {}},
            "failedTasks": [],
            "tasks": {},
            # extra labels on every step process (a controller routes their events by them)
            "processLabels": dict(process_labels or {}),
            # where task logs go (default FLOWYARD_HOME/logs/pipelines/<run id>)
            "logDir": log_dir,
        }
        root_node = st.new_node(st.ROOT_ID, ir.name, None, st.KIND_ROOT, ROOT)
        root_node["inputs"]["parameters"] = dict(resolved)
        self._state["tasks"][st.ROOT_ID] = root_node
        self._setup(ir, executor, cache)

    def _setup(self, ir: PipelineIR, executor: BaseExecutor, cache: TaskCache | None) -> None:
        self.ir = ir
        self.executor = executor
        self.cache = cache or TaskCache()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._run_label = self._state["runId"]
        executor.subscribe(self._on_status)

    @classmethod
    def from_snapshot(
        cls,
        ir: PipelineIR,
        snapshot: dict[str, Any],
        *,
        executor: BaseExecutor,
        cache: TaskCache | None = None,
    ) -> PipelineRun:
        """Resume a run from :meth:`snapshot` (its running steps are looked up by name)."""
        run = cls.__new__(cls)
        run._state = copy.deepcopy(snapshot)
        run._setup(ir, executor, cache)
        return run

    # ------------------------------------------------------------------ public API

    @property
    def run_id(self) -> str:
        return str(self._state["runId"])

    @property
    def phase(self) -> str:
        return str(self._state["phase"])

    @property
    def done(self) -> bool:
        return self._state["phase"] in st.FINAL_PHASES

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the run state (JSON-serializable; see ``state.py``)."""
        with self._lock:
            return copy.deepcopy(self._state)

    def task(self, task_id: str) -> dict[str, Any]:
        """One task node (a copy); NotFoundError for an unknown id."""
        with self._lock:
            if task_id not in self._state["tasks"]:
                raise NotFoundError(f"run {self.run_id} has no task {task_id!r}")
            return copy.deepcopy(self._state["tasks"][task_id])

    def step(self) -> bool:
        """Advance the run as far as possible without waiting; True when anything changed."""
        with self._lock:
            if self.done:
                return False
            changed = False
            if self._state["phase"] == st.PHASE_PENDING:
                self._state["phase"] = st.PHASE_RUNNING
                self._state["startedAt"] = time.time()
                changed = True
            changed |= self._poll_processes()
            for _ in range(_MAX_ROUNDS):
                if not self._advance():
                    break
                changed = True
            changed |= self._finish_run_if_done()
            return changed

    def run_until_done(self, timeout: float | None = None, poll: float = 0.5) -> dict[str, Any]:
        """Step until the run ends (or ``timeout`` seconds pass); return the snapshot."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self._wake.clear()
            self.step()
            if self.done:
                return self.snapshot()
            wait = min(poll, self._next_retry_in())
            if end is not None:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return self.snapshot()
                wait = min(wait, remaining)
            self._wake.wait(max(wait, 0.0))

    def terminate(self, grace_seconds: float = 5.0) -> None:
        """Kill every running step (its whole process group) and cancel what has not started."""
        with self._lock:
            if self.done:
                return
            self._state["phase"] = st.PHASE_CANCELING
            for node in self._state["tasks"].values():
                if node["state"] == st.PENDING:
                    st.finish(node, st.CANCELED, st.RUN_TERMINATED, "run terminated")
                elif node["state"] == st.RUNNING and node.get("process"):
                    self.executor.kill(node["process"], grace_seconds)
            self._wake.set()

    def retry(self) -> None:
        """Re-run the failed, skipped and canceled tasks of a finished run; keep the rest."""
        with self._lock:
            if not self.done or self._state["phase"] == st.PHASE_SUCCEEDED:
                raise ConflictError(
                    f"run {self.run_id} is {self.phase}; only a Failed or Canceled run can be"
                    " retried"
                )
            for node in self._state["tasks"].values():
                if st.is_ok(node):
                    continue
                self._reset_node(node)
            self._state.update(phase=st.PHASE_RUNNING, message="", finishedAt=None, failedTasks=[])
            self._wake.set()

    def close(self) -> None:
        """Stop reacting to executor events (the executor keeps no reference we can drop)."""
        self._run_label = ""

    # ------------------------------------------------------------------ internals

    def _on_status(self, status: ProcessStatus) -> None:
        if self._run_label and status.labels.get("pipelines.flowyard.io/run") == self._run_label:
            self._wake.set()

    def _nodes(self) -> dict[str, dict[str, Any]]:
        nodes: dict[str, dict[str, Any]] = self._state["tasks"]
        return nodes

    def _context(self, node: dict[str, Any]) -> RuntimeContext:
        stamp = _utc(self._state["createdAt"])
        scheduled = self._state.get("scheduledAt")
        return RuntimeContext(
            job_name=self._state["runName"],
            job_id=self._state["runId"],
            task_name=node["name"],
            task_id=f"{self._state['runId']}-{node['id'] or 'root'}",
            pipeline_root=self._state["pipelineRoot"],
            create_time=stamp,
            schedule_time=_utc(scheduled) if scheduled is not None else stamp,
            workspace_path=self._ensure_workspace(),
        )

    def _ensure_workspace(self) -> str | None:
        workspace = self._state.get("workspace")
        if workspace:
            os.makedirs(workspace, exist_ok=True)
        return str(workspace) if workspace else None

    def _reset_node(self, node: dict[str, Any]) -> None:
        has_children = bool(node["children"])
        node.update(
            state=st.RUNNING if has_children else st.PENDING,
            reason="",
            message="",
            finishedAt=None,
            outputs={"parameters": {}, "artifacts": {}},
            attempt=0,
            process=None,
            nextAttemptAt=None,
        )
        if not has_children:
            node["inputsResolved"] = False

    def _finish_run_if_done(self) -> bool:
        root = self._nodes()[st.ROOT_ID]
        if not st.is_final(root):
            return False
        failed = [
            n["id"]
            for n in self._nodes().values()
            if n["state"] == st.FAILED and n["kind"] not in st.GROUP_KINDS
        ]
        self._state["failedTasks"] = failed
        self._state["outputs"] = copy.deepcopy(root["outputs"])
        self._state["finishedAt"] = time.time()
        if self._state["phase"] == st.PHASE_CANCELING or root["state"] == st.CANCELED:
            self._state["phase"] = st.PHASE_CANCELED
            self._state["message"] = "run terminated"
        elif root["state"] in (st.SUCCEEDED, st.CACHED):
            self._state["phase"] = st.PHASE_SUCCEEDED
        else:
            self._state["phase"] = st.PHASE_FAILED
            details = [f"task {t!r} failed: {self._nodes()[t]['message']}" for t in failed[:3]]
            more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
            self._state["message"] = "; ".join(details) + more if failed else root["message"]
        return True

    def _next_retry_in(self) -> float:
        now = time.time()
        waits = [
            n["nextAttemptAt"] - now
            for n in self._nodes().values()
            if n["state"] == st.PENDING and n.get("nextAttemptAt")
        ]
        return max(min(waits), 0.0) if waits else float("inf")


__all__ = ["PipelineRun", "ProcessState"]


def _utc(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
