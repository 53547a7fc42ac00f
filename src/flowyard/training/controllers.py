"""The training controllers: one per v1 job kind (PyTorchJob, TFJob, XGBoostJob, MPIJob) and one
for TrainJob, all driving the gang runners from ``reconcile``.

Contract of every ``reconcile`` (level-triggered, idempotent, no in-memory state):

1. The job is gone: stop every process still labelled with its kind/namespace/name and drop
   the records of those that ended (logs stay); come back while some are still stopping.
2. Processes labelled with the job's name but another uid (a deleted job re-created under the
   same name) are stopped the same way.
3. Otherwise the runner's ``sync`` moves the job one step; its status is written with
   ``update_status`` *before* its events are recorded (a conflicting write is retried by the
   manager and must not leave events for a step that was not persisted), the job is deleted
   when the TTL after finishing passed, and the key is requeued after ``requeue_after``.

A restarted control plane needs nothing special: the executor re-adopts the replicas that still
run, the manager reconciles every job, and the runner finds the replicas of the stored attempt
(``status.flowyard.attempt``) by their labels, so it neither relaunches nor loses them.

:func:`install` is the control plane's startup hook: it registers the kinds, creates the
default ``torch-distributed`` runtime, lets admission look runtimes up in the store (a missing
``runtimeRef`` is a 422 at apply time) and check gangs against the executor's capacity.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flowyard.controllers.base import (
    LABEL_KIND,
    LABEL_NAME,
    LABEL_NAMESPACE,
    LABEL_UID,
    Controller,
    ObjectKey,
    Result,
    process_labels,
)
from flowyard.errors import NotFoundError
from flowyard.executors.base import BaseExecutor, ProcessStatus
from flowyard.executors.capacity import Capacity, resolve_capacity
from flowyard.resources.meta import Resource
from flowyard.resources.registry import KindInfo
from flowyard.store.base import BaseStore
from flowyard.training import gang
from flowyard.training.capacity import set_capacity_source
from flowyard.training.gang import SyncResult
from flowyard.training.kinds import (
    CLUSTERTRAININGRUNTIME,
    MPIJOB,
    PYTORCHJOB,
    TFJOB,
    TRAININGRUNTIME,
    TRAINJOB,
    XGBOOSTJOB,
    register_kinds,
)
from flowyard.training.runner import GangRunner
from flowyard.training.runtimes import ensure_default_runtimes
from flowyard.training.trainjob import RuntimeLookup, set_runtime_lookup
from flowyard.training.trainjob_runner import TrainJobRunner

__all__ = ["CONTROLLERS", "install", "register_kinds", "store_lookup"]

GRACE_SECONDS = 5.0


class _TrainingController(Controller):
    """Shared reconcile loop; subclasses say which runner drives their kind."""

    workers = 2
    runner: Any

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.runner = self.make_runner()

    def make_runner(self) -> Any:
        raise NotImplementedError

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            job = self.store.get(self.kind, key.namespace, key.name)
        except NotFoundError:
            return self._teardown(self._named(key), keep_uid=None)
        stale = self._teardown(self._named(key), keep_uid=str(job["metadata"].get("uid") or ""))
        if job["metadata"].get("deletionTimestamp"):
            self.runner.teardown(job)
            return None
        result: SyncResult = self.runner.sync(job, process_labels(self.kind, job))
        if result.status != (job.get("status") or {}):
            self.store.update_status({**job, "status": result.status})
        for type_, reason, message in result.events:
            self.events.record(job, type_, reason, message)  # type: ignore[arg-type]
        if result.delete:
            md = job["metadata"]
            with contextlib.suppress(NotFoundError):
                self.store.delete(self.kind, md.get("namespace"), md["name"], uid=md.get("uid"))
            return None
        return _soonest(result.requeue_after, stale.requeue_after if stale else None)

    def _named(self, key: ObjectKey) -> list[ProcessStatus]:
        labels = {LABEL_KIND: self.kind.key, LABEL_NAMESPACE: key.namespace, LABEL_NAME: key.name}
        return self.executor.list(labels)

    def _teardown(self, procs: list[ProcessStatus], keep_uid: str | None) -> Result | None:
        """Stop and forget the processes of a job that no longer exists (all of ``procs``, or
        those whose uid is not ``keep_uid``). Returns a requeue while some are still ending."""
        stale = [p for p in procs if keep_uid is None or p.labels.get(LABEL_UID) != keep_uid]
        if not stale:
            return None
        signalled = gang.kill_all(self.executor, stale, GRACE_SECONDS)
        gang.forget_finished(self.executor, stale)
        return Result(requeue_after=GRACE_SECONDS + 1.0) if signalled else None


def _soonest(*delays: float | None) -> Result | None:
    known = [d for d in delays if d is not None]
    return Result(requeue_after=max(min(known), 0.0)) if known else None


class _V1JobController(_TrainingController):
    def make_runner(self) -> GangRunner:
        return GangRunner(self.executor, grace_seconds=GRACE_SECONDS)


class PyTorchJobController(_V1JobController):
    kind = PYTORCHJOB


class TFJobController(_V1JobController):
    kind = TFJOB


class XGBoostJobController(_V1JobController):
    kind = XGBOOSTJOB


class MPIJobController(_V1JobController):
    kind = MPIJOB


class TrainJobController(_TrainingController):
    kind = TRAINJOB

    def make_runner(self) -> TrainJobRunner:
        return TrainJobRunner(self.executor, store_lookup(self.store), grace_seconds=GRACE_SECONDS)


CONTROLLERS: tuple[type[Controller], ...] = (
    PyTorchJobController,
    TFJobController,
    XGBoostJobController,
    MPIJobController,
    TrainJobController,
)


def store_lookup(store: BaseStore) -> RuntimeLookup:
    """A runtime lookup over ``store``: ``(kind, namespace, name) -> runtime or None``."""
    kinds: dict[str, KindInfo] = {
        CLUSTERTRAININGRUNTIME.kind: CLUSTERTRAININGRUNTIME,
        TRAININGRUNTIME.kind: TRAININGRUNTIME,
    }

    def lookup(kind: str, namespace: str, name: str) -> Resource | None:
        info = kinds.get(kind)
        if info is None or not name:
            return None
        try:
            return store.get(info, namespace if info.namespaced else None, name)
        except NotFoundError:
            return None

    return lookup


def executor_capacity(executor: BaseExecutor) -> Capacity:
    """The executor's totals as admission's :class:`Capacity` (the process cap is the
    machine-wide one the local executor also uses)."""
    own = executor.capacity()
    return resolve_capacity(cpu=own.cpu, memory=own.memory, gpus=int(own.gpu))


def install(store: BaseStore, executor: BaseExecutor) -> list[str]:
    """Startup hook of the control plane (see the module docstring). Returns the names of the
    default runtimes it created."""
    register_kinds()
    set_runtime_lookup(store_lookup(store))
    capacity = executor_capacity(executor)
    set_capacity_source(lambda: capacity)
    return ensure_default_runtimes(store)
