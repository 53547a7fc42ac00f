"""The gang runner for v1 jobs (PyTorchJob, TFJob, XGBoostJob, MPIJob).

A job controller calls :meth:`GangRunner.sync` from ``reconcile`` with the stored job, writes
the returned ``status`` with ``update_status``, records the returned events, deletes the job
when ``delete`` is set and requeues after ``requeue_after``. ``sync`` is level-triggered and
idempotent: everything it needs is in the job (spec and ``status.flowyard``) and the executor.

What one ``sync`` does, in order:

1. Sets ``Created``. A finished job: stops whatever still runs, applies ``cleanPodPolicy`` to the
   process records and reports the TTL. A suspended job: stops its processes, ``Suspended``.
2. ``activeDeadlineSeconds`` (from ``startTime``) passed: stops the gang, ``Failed``.
3. No processes for the current attempt: launches all replicas as one gang through
   ``executor.launch_gang`` (all start together or wait together; a gang that can never fit
   fails the job). Processes of older attempts that still run are stopped.
4. A replica failed: by its ``restartPolicy`` and exit code the job fails (``Never``;
   ``ExitCode`` with 1-127) or the gang restarts (``OnFailure``, ``Always``, ``ExitCode`` with
   128-255) until ``backoffLimit`` restarts are used up. A restart stops the whole gang and
   launches a new attempt with fresh ports, because a rendezvous needs every rank (upstream
   re-creates only the failed pod; the other ranks then usually fail too).
5. The kind's success rule met: ``Succeeded``; the replicas still running are stopped.

Differences from upstream, on purpose: at the end of a job, replicas still running are always
stopped (a process left running on the host would be a leak, e.g. a TF parameter server);
``cleanPodPolicy`` decides which process *records* are dropped (``All``: all, ``Running``: the
ones that were stopped, ``None``: none); logs are always kept.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from flowyard.controllers.base import process_labels
from flowyard.errors import InsufficientResourcesError
from flowyard.executors.base import BaseExecutor, ProcessState, ProcessStatus
from flowyard.resources.meta import Resource, now_iso, parse_time
from flowyard.training import gang
from flowyard.training import status as st
from flowyard.training.frameworks import framework_of, replica_count, replica_specs, run_policy
from flowyard.training.gang import SyncResult
from flowyard.training.plan import LABEL_REPLICA_TYPE, plan_v1, plan_v1_network

POLL_SECONDS = 10.0


class GangRunner:
    """Runs v1 jobs through ``executor``; ``grace_seconds`` is the SIGTERM-to-SIGKILL grace."""

    def __init__(
        self,
        executor: BaseExecutor,
        *,
        grace_seconds: float = 5.0,
        drain_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.executor = executor
        self.grace = grace_seconds
        self.drain = drain_seconds
        self.clock = clock

    # -- entry points ------------------------------------------------------------------------
    def sync(self, job: Resource, labels: dict[str, str] | None = None) -> SyncResult:
        """Drive ``job`` one step; see the module docstring."""
        status = copy.deepcopy(job.get("status") or {})
        result = SyncResult(status)
        kind, md = str(job["kind"]), job["metadata"]
        msgs = st.messages(kind, md["name"], str(md.get("namespace") or ""))
        state = gang.runner_state(status)
        if st.condition(status, st.CREATED) is None:
            st.update_job_conditions(status, st.CREATED, True, kind + "Created", msgs[st.CREATED])
        procs = gang.job_processes(self.executor, str(md.get("uid") or ""))
        if st.is_finished(status):
            return self._finished(job, result, procs)
        if run_policy(job).get("suspend"):
            return self._suspend(job, result, procs, msgs)
        if st.is_true(status, st.SUSPENDED):
            st.update_job_conditions(status, st.SUSPENDED, False, kind + "Resumed", msgs["Resumed"])
            status["startTime"] = now_iso()
            state["attempt"] += 1
            result.events.append(("Normal", kind + "Resumed", msgs["Resumed"]))
        current = gang.of_attempt(procs, state["attempt"])
        gang.kill_all(self.executor, [p for p in procs if p not in current], self.grace)
        if self._past_deadline(job, status) or gang.deadline_hit(current):
            return self._fail(job, result, procs, msgs["Deadline"])
        if not current or state["attempt"] == 0:
            return self._launch(job, result, labels)
        return self._evaluate(job, result, procs, current, labels)

    def teardown(self, job: Resource) -> None:
        """The job was deleted: stop its processes and drop their records (logs stay)."""
        procs = gang.job_processes(self.executor, str(job["metadata"].get("uid") or ""))
        gang.kill_all(self.executor, procs, self.grace)
        gang.forget_finished(self.executor, procs)

    # -- steps -------------------------------------------------------------------------------
    def _launch(
        self, job: Resource, result: SyncResult, labels: dict[str, str] | None
    ) -> SyncResult:
        status = result.status
        state = gang.runner_state(status)
        state["attempt"] = max(1, state["attempt"])
        status.setdefault("startTime", now_iso())
        net = plan_v1_network(job)
        state["network"] = net.to_status()
        base = labels if labels is not None else _labels(job)
        members = plan_v1(job, state["attempt"], net, base, self._remaining(job, status))
        try:
            gang.launch(self.executor, members)
        except InsufficientResourcesError as exc:
            return self._fail(
                job,
                result,
                [],
                f"{job['kind']} {job['metadata']['name']} cannot start: {exc.message}",
            )
        result.events.extend(gang.created_events(job, members))
        status["replicaStatuses"] = {
            t: st.ReplicaCounts(active=replica_count(s)).to_status(_selector(job, t))
            for t, s in replica_specs(job).items()
        }
        result.requeue_after = self._requeue(job, status)
        return result

    def _evaluate(
        self,
        job: Resource,
        result: SyncResult,
        procs: list[ProcessStatus],
        current: list[ProcessStatus],
        labels: dict[str, str] | None,
    ) -> SyncResult:
        status, kind, md = result.status, str(job["kind"]), job["metadata"]
        msgs = st.messages(kind, md["name"], str(md.get("namespace") or ""))
        counts = self._counts(job, current)
        status["replicaStatuses"] = {t: c.to_status(_selector(job, t)) for t, c in counts.items()}
        specs = replica_specs(job)
        expected = {t: replica_count(s) for t, s in specs.items()}
        if st.job_succeeded(kind, job.get("spec") or {}, expected, counts):
            st.update_job_conditions(
                status, st.SUCCEEDED, True, kind + "Succeeded", msgs[st.SUCCEEDED]
            )
            status.setdefault("completionTime", now_iso())
            result.events.append(("Normal", kind + "Succeeded", msgs[st.SUCCEEDED]))
            return self._finished(job, result, procs)
        failed = gang.failed_members(current)
        if failed:
            return self._on_failure(job, result, procs, failed, counts, labels)
        masters = framework_of(job).master_types
        leaders = [t for t in masters if t in specs] or ["Worker"]
        if any(counts.get(t, st.ReplicaCounts()).active for t in leaders) and self._all_started(
            current
        ):
            st.update_job_conditions(status, st.RUNNING, True, kind + "Running", msgs[st.RUNNING])
        result.requeue_after = self._requeue(job, status)
        return result

    def _on_failure(
        self,
        job: Resource,
        result: SyncResult,
        procs: list[ProcessStatus],
        failed: list[ProcessStatus],
        counts: dict[str, st.ReplicaCounts],
        labels: dict[str, str] | None,
    ) -> SyncResult:
        kind, md = str(job["kind"]), job["metadata"]
        specs = replica_specs(job)
        first = failed[0]
        rtype = _canonical(job, first.labels.get(LABEL_REPLICA_TYPE, ""))
        policy = str((specs.get(rtype) or {}).get("restartPolicy") or "Never")
        n_failed = counts.get(rtype, st.ReplicaCounts()).failed
        if not all(
            st.should_restart(
                str(
                    (specs.get(_canonical(job, p.labels.get(LABEL_REPLICA_TYPE, ""))) or {}).get(
                        "restartPolicy"
                    )
                ),
                p.exit_code,
            )
            for p in failed
        ):
            message = st.failed_message(
                kind,
                md["name"],
                str(md.get("namespace") or ""),
                n_failed,
                rtype,
                policy == "ExitCode",
            )
            return self._fail(job, result, procs, message)
        state = gang.runner_state(result.status)
        limit = run_policy(job).get("backoffLimit")
        if isinstance(limit, int) and state["restarts"] >= limit:
            msgs = st.messages(kind, md["name"], str(md.get("namespace") or ""))
            return self._fail(job, result, procs, msgs["Backoff"])
        message = st.restarting_message(kind, md["name"], n_failed, rtype)
        st.update_job_conditions(result.status, st.RESTARTING, True, kind + "Restarting", message)
        result.events.append(("Warning", kind + "Restarting", message))
        gang.kill_all(self.executor, procs, self.grace)
        state["restarts"] += 1
        state["attempt"] += 1
        return self._launch(job, result, labels)

    def _fail(
        self, job: Resource, result: SyncResult, procs: list[ProcessStatus], message: str
    ) -> SyncResult:
        kind = str(job["kind"])
        gang.kill_all(self.executor, procs, self.grace)
        result.status.setdefault("completionTime", now_iso())
        st.update_job_conditions(result.status, st.FAILED, True, kind + "Failed", message)
        result.events.append(("Warning", kind + "Failed", message))
        return self._finished(job, result, procs)

    def _suspend(
        self, job: Resource, result: SyncResult, procs: list[ProcessStatus], msgs: dict[str, str]
    ) -> SyncResult:
        kind, status = str(job["kind"]), result.status
        gang.kill_all(self.executor, procs, self.grace)
        for replica in (status.get("replicaStatuses") or {}).values():
            replica["active"] = 0
        if st.is_true(status, st.RUNNING):
            st.update_job_conditions(
                status, st.RUNNING, False, kind + "Suspended", msgs[st.SUSPENDED]
            )
        if not st.is_true(status, st.SUSPENDED):
            st.update_job_conditions(
                status, st.SUSPENDED, True, kind + "Suspended", msgs[st.SUSPENDED]
            )
            result.events.append(("Normal", kind + "Suspended", msgs[st.SUSPENDED]))
        return result

    def _finished(
        self, job: Resource, result: SyncResult, procs: list[ProcessStatus]
    ) -> SyncResult:
        """Terminal: nothing may keep running; cleanPodPolicy; ttlSecondsAfterFinished.

        After success the replicas still running get ``drain_seconds`` to end on their own
        (workers finishing their last step) before they are stopped."""
        status = result.status
        done = status.get("completionTime")
        drain_left = 0.0
        if st.is_true(status, st.SUCCEEDED) and done:
            drain_left = parse_time(done).timestamp() + self.drain - self.clock()
        active = [p for p in procs if p.state in gang.ACTIVE]
        if active and drain_left > 0:
            result.requeue_after = min(drain_left, 1.0)
            return result
        still = gang.kill_all(self.executor, procs, self.grace)
        policy = run_policy(job).get("cleanPodPolicy") or "None"
        if policy == "All":
            gang.forget_finished(self.executor, procs)
        elif policy == "Running":
            gang.forget_finished(self.executor, procs, only_killed=True)
        self._final_counts(job, status, procs)
        ttl = run_policy(job).get("ttlSecondsAfterFinished")
        if isinstance(ttl, int) and done:
            left = parse_time(done).timestamp() + ttl - self.clock()
            if left <= 0 and not still:
                result.delete = True
            else:
                result.requeue_after = max(left, 0.1)
        if still and result.requeue_after is None:
            result.requeue_after = self.grace + 1.0  # come back to drop the stopped records
        return result

    # -- helpers -----------------------------------------------------------------------------
    def _final_counts(
        self, job: Resource, status: dict[str, Any], procs: list[ProcessStatus]
    ) -> None:
        """``replicaStatuses`` of a finished job: how each replica of the last attempt ended
        (replicas stopped at the end count as neither succeeded nor failed), none active."""
        attempt = gang.runner_state(status)["attempt"]
        ended = [p for p in gang.of_attempt(procs, attempt) if p.state != ProcessState.KILLED]
        counts = self._counts(job, ended)
        for rtype, replica in (status.get("replicaStatuses") or {}).items():
            mine = counts.get(rtype)
            replica["active"] = 0
            if mine is not None and procs:
                replica["succeeded"], replica["failed"] = mine.succeeded, mine.failed

    def _counts(self, job: Resource, current: list[ProcessStatus]) -> dict[str, st.ReplicaCounts]:
        by_lower = gang.counts_by_type(current)
        return {_canonical(job, t): c for t, c in by_lower.items()}

    @staticmethod
    def _all_started(current: list[ProcessStatus]) -> bool:
        return all(p.state.value != "Pending" for p in current)

    def _remaining(self, job: Resource, status: dict[str, Any]) -> float | None:
        deadline = run_policy(job).get("activeDeadlineSeconds")
        if not isinstance(deadline, int) or not status.get("startTime"):
            return None
        left = parse_time(status["startTime"]).timestamp() + deadline - self.clock()
        return max(left, 0.001)

    def _past_deadline(self, job: Resource, status: dict[str, Any]) -> bool:
        left = self._remaining(job, status)
        return left is not None and left <= 0.001

    def _requeue(self, job: Resource, status: dict[str, Any]) -> float:
        left = self._remaining(job, status)
        return min(POLL_SECONDS, left) if left is not None else POLL_SECONDS


def _canonical(job: Resource, lowered: str) -> str:
    return framework_of(job).canonical_type(lowered) or lowered


def _selector(job: Resource, rtype: str) -> str:
    return (
        f"training.kubeflow.org/job-name={job['metadata']['name']},"
        f"training.kubeflow.org/replica-type={rtype.lower()}"
    )


def _labels(job: Resource) -> dict[str, str]:
    from flowyard.resources.registry import REGISTRY
    from flowyard.training.kinds import register_kinds

    register_kinds()
    return process_labels(REGISTRY.get(job["apiVersion"], job["kind"]), job)
