"""The ``pipelines.kubeflow.org/v2beta1 Run`` controller: runs a pipeline IR on the shared executor.

Per Run (keyed by uid), one :class:`~flowyard.pipelines.engine.PipelineRun` lives in memory while
the run is active. Its step processes carry the Run's process labels, so the manager calls
``reconcile`` on every step state change; ``reconcile`` then calls ``step()`` and writes the
snapshot into ``status`` (immediately when a task changed state, otherwise at most every
:data:`STATUS_INTERVAL` seconds). After a control-plane restart, the engine is rebuilt from
``status.engine`` and finds its running steps among the processes the executor adopted.

Actions (the KFP REST verbs as spec fields): ``spec.terminate: true`` terminates (kills every
running step's process group); incrementing ``spec.retry`` retries a FAILED or CANCELED run
(``status.observedRetry`` records the value acted on). Deleting a Run kills its steps first
(finalizer :data:`FINALIZER`). Step logs are written to
``FLOWYARD_HOME/logs/<ns>/runs/<name>/<task id, / as .>.log`` (``flowyard logs run/NAME -c TASK``).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flowyard.controllers.base import (
    LABEL_UID,
    Controller,
    ControllerContext,
    ObjectKey,
    Result,
    process_labels,
)
from flowyard.errors import FlowyardError, NotFoundError
from flowyard.pipelines import run_status
from flowyard.pipelines.cache import TaskCache
from flowyard.pipelines.engine import PipelineRun
from flowyard.pipelines.ir import PipelineIR
from flowyard.pipelines.kinds import FINAL_RUN_STATES, RUN
from flowyard.pipelines.run_source import resolve_ir, run_log_dir
from flowyard.resources.meta import Resource, parse_time

log = logging.getLogger(__name__)

FINALIZER = "pipelines.kubeflow.org/run-cleanup"
STATUS_INTERVAL = 0.2
_POLL = 1.0  # safety poll of an active run (events normally wake it sooner)


@dataclass
class _Active:
    engine: PipelineRun
    signature: tuple[Any, ...] = ()
    written_at: float = 0.0
    dirty: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class RunController(Controller):
    kind = RUN
    workers = 4

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self._active: dict[str, _Active] = {}
        self._guard = threading.Lock()
        self.cache = TaskCache()

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            run = self.store.get(RUN, key.namespace, key.name)
        except NotFoundError:
            return None
        uid = str(run["metadata"]["uid"])
        if run["metadata"].get("deletionTimestamp"):
            return self._delete(run, uid)
        run = self.add_finalizer(run, FINALIZER)
        state = (run.get("status") or {}).get("state")
        active = self._active.get(uid)
        if active is None and state in FINAL_RUN_STATES and not _wants_retry(run):
            return None
        if active is None:
            active = self._start(run, uid)
            if active is None:
                return None
        with active.lock:
            return self._drive(run, uid, active)

    # -- lifecycle ---------------------------------------------------------------------------
    def _start(self, run: Resource, uid: str) -> _Active | None:
        """Build the engine: resumed from ``status.engine``, or new (the IR resolved now)."""
        try:
            ir, resolved_from_ref = resolve_ir(self.store, run)
        except FlowyardError as exc:
            self._fail_without_engine(run, "InvalidPipeline", str(exc))
            return None
        snapshot = (run.get("status") or {}).get("engine")
        try:
            if snapshot:
                engine = PipelineRun.from_snapshot(
                    ir, snapshot, executor=self.executor, cache=self.cache
                )
            else:
                engine = self._new_engine(run, uid, ir)
                if resolved_from_ref:
                    run.setdefault("status", {})["pipelineSpec"] = ir.spec
        except FlowyardError as exc:
            self._fail_without_engine(run, "InvalidRun", str(exc))
            return None
        active = _Active(engine)
        with self._guard:
            existing = self._active.setdefault(uid, active)
        if existing is not active:
            engine.close()
        return existing

    def _new_engine(self, run: Resource, uid: str, ir: PipelineIR) -> PipelineRun:
        spec = run["spec"]
        config = spec.get("runtimeConfig") or {}
        md = run["metadata"]
        return PipelineRun(
            ir,
            config.get("parameters") or {},
            executor=self.executor,
            pipeline_root=config.get("pipelineRoot") or None,
            run_id=uid,
            run_name=md["name"],
            namespace=md.get("namespace") or "default",
            enable_caching=bool(spec.get("enableCaching", True)),
            cache=self.cache,
            process_labels=process_labels(RUN, run),
            log_dir=str(run_log_dir(md.get("namespace") or "default", md["name"])),
            schedule_time=_scheduled_at(run),
        )

    def _drive(self, run: Resource, uid: str, active: _Active) -> Result | None:
        engine = active.engine
        spec = run["spec"]
        if spec.get("terminate") and not engine.done:
            engine.terminate()
            active.dirty = True
        observed = int((run.get("status") or {}).get("observedRetry") or 0)
        retry_to = int(spec.get("retry") or 0)
        if retry_to > observed and engine.done:
            if not spec.get("terminate") and engine.phase != "Succeeded":
                engine.retry()
            active.dirty = True
        active.dirty |= engine.step()
        snapshot = engine.snapshot()
        signature = run_status.task_signature(snapshot)
        urgent = signature != active.signature or engine.done or retry_to > observed
        wait = STATUS_INTERVAL - (time.monotonic() - active.written_at)
        if active.dirty and (urgent or wait <= 0):
            self._write_status(run, snapshot, retry_to)
            active.signature, active.written_at, active.dirty = signature, time.monotonic(), False
        if engine.done and not active.dirty:
            self._forget(uid)
            return None
        if active.dirty:
            return Result(requeue_after=max(wait, 0.01))
        return Result(requeue_after=min(_POLL, max(engine._next_retry_in(), 0.01)))

    def _write_status(self, run: Resource, snapshot: dict[str, Any], observed: int) -> None:
        new = copy.deepcopy(run)
        run_status.apply_snapshot(new, snapshot)
        new["status"]["observedRetry"] = observed
        new["metadata"]["resourceVersion"] = ""  # status is ours alone: write unconditionally
        try:
            self.store.update_status(new)
        except NotFoundError:
            return
        run["status"] = new["status"]

    def _fail_without_engine(self, run: Resource, reason: str, message: str) -> None:
        new = copy.deepcopy(run)
        run_status.set_state(new, "FAILED", reason, message)
        new["status"]["observedRetry"] = int(run["spec"].get("retry") or 0)
        new["metadata"]["resourceVersion"] = ""
        with contextlib.suppress(NotFoundError):
            self.store.update_status(new)
        self.events.record(run, "Warning", reason, message[:1000])

    def _delete(self, run: Resource, uid: str) -> Result | None:
        """Stop the steps, then release the finalizer (requeued until every step is gone)."""
        active = self._active.get(uid)
        if active is not None:
            with active.lock:
                active.engine.terminate(grace_seconds=1.0)
                active.engine.step()
            self._forget(uid)
        if not self.stop_processes({LABEL_UID: uid}):
            return Result(requeue_after=0.2)
        self.remove_finalizer(run, FINALIZER)
        return None

    def _forget(self, uid: str) -> None:
        with self._guard:
            active = self._active.pop(uid, None)
        if active is not None:
            active.engine.close()


def _wants_retry(run: Resource) -> bool:
    spec, status = run.get("spec") or {}, run.get("status") or {}
    return int(spec.get("retry") or 0) > int(status.get("observedRetry") or 0)


def _scheduled_at(run: Resource) -> float | None:
    """When a recurring run was due (the scheduler's annotation), in epoch seconds."""
    value = ((run.get("metadata") or {}).get("annotations") or {}).get(
        "pipelines.kubeflow.org/scheduled-at"
    )
    if not value:
        return None
    try:
        return parse_time(value).timestamp()
    except ValueError:
        return None
