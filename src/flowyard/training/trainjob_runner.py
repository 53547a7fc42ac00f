"""The gang runner for TrainJob (Trainer v2). Same contract as
:class:`flowyard.training.runner.GangRunner`: call :meth:`TrainJobRunner.sync` from reconcile and
persist the returned status.

Upstream a TrainJob becomes a JobSet: initializer jobs first, then the trainer job with
``numNodes`` pods; the TrainJob mirrors the JobSet's conditions (``Complete`` with reason
``AllJobsCompleted``, ``Failed`` with ``FailedJobs`` or ``ReachedMaxRestarts``) and its
``replicatedJobsStatus`` as ``jobsStatus``. Here: the initializers run as processes first; when
all succeeded the trainer nodes start as one gang. A failed node restarts the whole trainer gang
(a JobSet restart) while ``failurePolicy.maxRestarts`` of the runtime allows (default 0), else
the TrainJob fails; the other nodes are stopped. ``spec.suspend`` stops everything
(``Suspended``); ``activeDeadlineSeconds`` fails it with ``DeadlineExceeded``.

flowyard-specific reason: a ``runtimeRef`` that does not exist fails the TrainJob with reason
``TrainingRuntimeNotFound`` (upstream's webhook rejects such a TrainJob; admission here does too
when the control plane installed a runtime lookup).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from flowyard.errors import InsufficientResourcesError, NotFoundError
from flowyard.executors.base import BaseExecutor, ProcessStatus
from flowyard.resources.conditions import is_true, set_condition
from flowyard.resources.meta import Resource, now_iso, parse_time
from flowyard.training import gang
from flowyard.training.gang import SyncResult
from flowyard.training.plan import LABEL_REPLICA_TYPE
from flowyard.training.trainjob import (
    DATASET_INITIALIZER,
    MODEL_INITIALIZER,
    NODE,
    SUPPORTED_POLICIES,
    RuntimeLookup,
    effective_runtime_spec,
    framework_policy,
    resolve_runtime,
)
from flowyard.training.trainjob_plan import initializer_members, trainer_members, trainer_network

SUSPENDED, COMPLETE, FAILED = "Suspended", "Complete", "Failed"
POLL_SECONDS = 10.0
INITIALIZERS = (DATASET_INITIALIZER, MODEL_INITIALIZER)


class TrainJobRunner:
    def __init__(
        self,
        executor: BaseExecutor,
        lookup: RuntimeLookup,
        *,
        grace_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.executor = executor
        self.lookup = lookup
        self.grace = grace_seconds
        self.clock = clock

    def sync(self, job: Resource, labels: dict[str, str] | None = None) -> SyncResult:
        holder = {"status": copy.deepcopy(job.get("status") or {})}
        result = SyncResult(holder["status"])
        state = gang.runner_state(holder["status"])
        procs = gang.job_processes(self.executor, str(job["metadata"].get("uid") or ""))
        if is_true(holder, COMPLETE) or is_true(holder, FAILED):
            gang.kill_all(self.executor, procs, self.grace)
            return result
        try:
            runtime_spec = effective_runtime_spec(job, resolve_runtime(job, self.lookup))
        except NotFoundError as exc:
            return self._fail(holder, result, procs, "TrainingRuntimeNotFound", exc.message)
        policy = framework_policy(runtime_spec)
        if policy is not None and policy not in SUPPORTED_POLICIES:
            return self._fail(
                holder,
                result,
                procs,
                "TrainingRuntimeNotSupported",
                f"the runtime's mlPolicy {policy!r} is not supported by flowyard "
                "(torch and plain runtimes are)",
            )
        if (job.get("spec") or {}).get("suspend"):
            gang.kill_all(self.executor, procs, self.grace)
            set_condition(holder, SUSPENDED, True, "Suspended", "TrainJob is suspended")
            result.status["jobsStatus"] = self._jobs_status(job, runtime_spec, [], True)
            return result
        if is_true(holder, SUSPENDED):
            set_condition(holder, SUSPENDED, False, "Resumed", "TrainJob is resumed")
            state["attempt"] += 1
            state.pop("startTime", None)
            state.pop("phase", None)
        current = gang.of_attempt(procs, state["attempt"])
        gang.kill_all(self.executor, [p for p in procs if p not in current], self.grace)
        if self._past_deadline(job, state) or gang.deadline_hit(current):
            return self._fail(
                holder, result, procs, "DeadlineExceeded", "TrainJob exceeded its active deadline"
            )
        return self._step(job, runtime_spec, holder, result, procs, current, labels)

    def _step(
        self,
        job: Resource,
        runtime_spec: dict[str, Any],
        holder: dict[str, Any],
        result: SyncResult,
        procs: list[ProcessStatus],
        current: list[ProcessStatus],
        labels: dict[str, str] | None,
    ) -> SyncResult:
        state = gang.runner_state(result.status)
        base = labels if labels is not None else _labels(job)
        if state["attempt"] == 0:
            state["attempt"] = 1
            state["startTime"] = now_iso()
        inits = [p for p in current if p.labels.get(LABEL_REPLICA_TYPE) in INITIALIZERS]
        nodes = [p for p in current if p.labels.get(LABEL_REPLICA_TYPE) == NODE]
        result.status["jobsStatus"] = self._jobs_status(job, runtime_spec, current, False)
        result.requeue_after = self._requeue(job, state)
        if not nodes and state.get("phase") != "trainer":
            planned = initializer_members(job, state["attempt"], base)
            if planned and not inits:
                gang.launch(self.executor, planned)
                result.events.extend(gang.created_events(job, planned))
                state["phase"] = "initializer"
                return result
            if gang.failed_members(inits):
                return self._fail(
                    holder,
                    result,
                    procs,
                    "FailedJobs",
                    "jobset failed due to one or more job failures",
                )
            if any(p.state in gang.ACTIVE for p in inits):
                return result
            return self._launch_trainer(job, runtime_spec, holder, result, base)
        if not nodes:
            return self._launch_trainer(job, runtime_spec, holder, result, base)
        if gang.failed_members(nodes):
            return self._node_failed(job, runtime_spec, holder, result, procs, base)
        if all(p.state.value == "Succeeded" for p in nodes):
            set_condition(
                holder, COMPLETE, True, "AllJobsCompleted", "jobset completed successfully"
            )
            result.events.append(("Normal", "Completed", "jobset completed successfully"))
            result.requeue_after = None
        return result

    def _launch_trainer(
        self,
        job: Resource,
        runtime_spec: dict[str, Any],
        holder: dict[str, Any],
        result: SyncResult,
        labels: dict[str, str],
    ) -> SyncResult:
        state = gang.runner_state(result.status)
        net = trainer_network(job, runtime_spec)
        state["network"] = net.to_status()
        state["phase"] = "trainer"
        members = trainer_members(
            job, runtime_spec, state["attempt"], net, labels, self._remaining(job, state)
        )
        try:
            gang.launch(self.executor, members)
        except InsufficientResourcesError as exc:
            return self._fail(holder, result, [], "FailedJobs", exc.message)
        result.events.extend(gang.created_events(job, members))
        return result

    def _node_failed(
        self,
        job: Resource,
        runtime_spec: dict[str, Any],
        holder: dict[str, Any],
        result: SyncResult,
        procs: list[ProcessStatus],
        labels: dict[str, str],
    ) -> SyncResult:
        state = gang.runner_state(result.status)
        policy = ((runtime_spec.get("template") or {}).get("spec") or {}).get("failurePolicy") or {}
        max_restarts = int(policy.get("maxRestarts") or 0)
        if state["restarts"] >= max_restarts:
            reason, message = (
                ("ReachedMaxRestarts", "jobset failed due to reaching max number of restarts")
                if max_restarts
                else ("FailedJobs", "jobset failed due to one or more job failures")
            )
            return self._fail(holder, result, procs, reason, message)
        gang.kill_all(self.executor, procs, self.grace)
        state["restarts"] += 1
        state["attempt"] += 1
        result.events.append(
            (
                "Warning",
                "Restarting",
                f"restarting the trainer nodes ({state['restarts']}/{max_restarts})",
            )
        )
        return self._launch_trainer(job, runtime_spec, holder, result, labels)

    def _fail(
        self,
        holder: dict[str, Any],
        result: SyncResult,
        procs: list[ProcessStatus],
        reason: str,
        message: str,
    ) -> SyncResult:
        gang.kill_all(self.executor, procs, self.grace)
        set_condition(holder, FAILED, True, reason, message)
        result.events.append(("Warning", reason, message))
        result.requeue_after = None
        for entry in result.status.get("jobsStatus") or []:
            entry["active"] = entry["ready"] = 0
        return result

    def teardown(self, job: Resource) -> None:
        procs = gang.job_processes(self.executor, str(job["metadata"].get("uid") or ""))
        gang.kill_all(self.executor, procs, self.grace)
        gang.forget_finished(self.executor, procs)

    def _jobs_status(
        self,
        job: Resource,
        runtime_spec: dict[str, Any],
        current: list[ProcessStatus],
        suspended: bool,
    ) -> list[dict[str, int | str]]:
        from flowyard.training.trainjob import replicated_jobs

        names = [str(j.get("name")) for j in replicated_jobs(runtime_spec)]
        init = (job.get("spec") or {}).get("initializer") or {}
        for kind, what in (("dataset", DATASET_INITIALIZER), ("model", MODEL_INITIALIZER)):
            if (init.get(kind) or {}).get("storageUri") and what not in names:
                names.insert(0, what)
        out: list[dict[str, int | str]] = []
        for name in names:
            mine = [p for p in current if p.labels.get(LABEL_REPLICA_TYPE) == name]
            counts = gang.counts_by_type(mine).get(name)
            running = sum(1 for p in mine if p.state.value == "Running")
            out.append(
                {
                    "name": name,
                    "active": counts.active if counts else 0,
                    "ready": running,
                    "succeeded": counts.succeeded if counts else 0,
                    "failed": counts.failed if counts else 0,
                    "suspended": 1 if suspended else 0,
                }
            )
        return out

    def _remaining(self, job: Resource, state: dict[str, Any]) -> float | None:
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        if not isinstance(deadline, int) or not state.get("startTime"):
            return None
        return max(parse_time(state["startTime"]).timestamp() + deadline - self.clock(), 0.001)

    def _past_deadline(self, job: Resource, state: dict[str, Any]) -> bool:
        left = self._remaining(job, state)
        return left is not None and left <= 0.001

    def _requeue(self, job: Resource, state: dict[str, Any]) -> float:
        left = self._remaining(job, state)
        return min(POLL_SECONDS, left) if left is not None else POLL_SECONDS


def _labels(job: Resource) -> dict[str, str]:
    from flowyard.controllers.base import process_labels
    from flowyard.training.kinds import TRAINJOB, register_kinds

    register_kinds()
    return process_labels(TRAINJOB, job)
