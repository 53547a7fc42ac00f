"""The ``batch/v1 Job`` controller: runs pods as host processes, with Kubernetes' Job semantics.

* NonIndexed: keep ``min(parallelism, completions - succeeded)`` processes running until
  ``succeeded == completions`` (with ``completions`` unset, the first success ends the Job once
  nothing is running). Indexed: each index ``0..completions-1`` must succeed once, and gets
  ``JOB_COMPLETION_INDEX``.
* A failed process counts towards ``backoffLimit``; the next attempt waits
  ``FLOWYARD_JOB_BACKOFF_SECONDS * 2**(failed-1)`` (default 1 s, capped at 60 s; Kubernetes uses
  10 s and 6 min because it also pulls images and schedules pods). ``restartPolicy: OnFailure``
  is run as a new attempt too (there is no kubelet to restart a container in place).
* ``activeDeadlineSeconds`` counts from ``startTime``; ``suspend`` kills running processes without
  counting them as failures; ``ttlSecondsAfterFinished`` deletes the finished Job.
* Conditions as Kubernetes 1.31+: ``SuccessCriteriaMet`` + ``Complete``, or ``FailureTarget`` +
  ``Failed`` with reasons ``BackoffLimitExceeded`` / ``DeadlineExceeded``, and ``Suspended``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from typing import Any

from flowyard.controllers.base import (
    LABEL_KIND,
    LABEL_NAME,
    LABEL_NAMESPACE,
    LABEL_UID,
    Controller,
    ObjectKey,
    Result,
)
from flowyard.errors import NotFoundError
from flowyard.executors.base import ProcessState, ProcessStatus
from flowyard.jobs import pods
from flowyard.resources.conditions import get_condition, is_true, set_condition
from flowyard.resources.kinds import JOB
from flowyard.resources.meta import Resource, now_iso, parse_time

_MAX_BACKOFF = 60.0


def _backoff_base() -> float:
    return float(os.environ.get("FLOWYARD_JOB_BACKOFF_SECONDS", "1.0"))


class JobController(Controller):
    kind = JOB
    workers = 4

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            job = self.store.get(JOB, key.namespace, key.name)
        except NotFoundError:
            labels = {LABEL_KIND: JOB.key, LABEL_NAMESPACE: key.namespace, LABEL_NAME: key.name}
            return None if self.stop_processes(labels) else Result(requeue_after=0.2)
        procs = self.executor.list({LABEL_UID: job["metadata"]["uid"]})
        if is_true(job, "Complete") or is_true(job, "Failed"):
            return self._after_finish(job, procs)
        if job["metadata"].get("deletionTimestamp"):
            self._kill(procs)
            return None
        new = copy.deepcopy(job)
        result = self._suspend(new, procs) if new["spec"].get("suspend") else self._run(new, procs)
        if new.get("status") != job.get("status"):
            self.store.update_status(new)
        return result

    # -- running -----------------------------------------------------------------------------
    def _run(self, job: Resource, procs: list[ProcessStatus]) -> Result | None:
        status = job.setdefault("status", {})
        if is_true(job, "Suspended"):
            set_condition(job, "Suspended", False, "JobResumed", "Job resumed")
            status["startTime"] = now_iso()
            self.events.record(job, "Normal", "Resumed", "Job resumed")
        status.setdefault("startTime", now_iso())
        counts = _count(procs)
        _write_counts(status, counts, procs)
        spec = job["spec"]
        if counts["failed"] > spec["backoffLimit"]:
            return self._fail(
                job, procs, "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            )
        remaining_deadline = self._deadline_left(job)
        if remaining_deadline is not None and remaining_deadline <= 0:
            return self._fail(
                job, procs, "DeadlineExceeded", "Job was active longer than specified deadline"
            )
        if self._succeeded(spec, procs, counts):
            return self._complete(job, procs)
        wait = self._backoff_left(procs, counts["failed"])
        if wait > 0:
            return Result(requeue_after=_soonest(wait, remaining_deadline))
        self._launch_missing(job, procs, counts)
        return Result(requeue_after=remaining_deadline) if remaining_deadline else None

    def _launch_missing(
        self, job: Resource, procs: list[ProcessStatus], counts: dict[str, int]
    ) -> None:
        spec = job["spec"]
        next_attempt = 1 + max(
            (int(p.labels.get(pods.LABEL_ATTEMPT, -1)) for p in procs), default=-1
        )
        for index in _indexes_to_start(spec, procs, counts):
            proc_spec = pods.pod_spec(job, next_attempt, index)
            self.executor.launch(proc_spec)
            self.events.record(
                job,
                "Normal",
                "SuccessfulCreate",
                f"Created pod: {pods.pod_name(job, next_attempt)}",
            )
            next_attempt += 1
            counts["active"] += 1
        job["status"]["active"] = counts["active"]

    def _succeeded(
        self, spec: dict[str, Any], procs: list[ProcessStatus], counts: dict[str, int]
    ) -> bool:
        if spec.get("completionMode") == "Indexed":
            return len(_succeeded_indexes(procs)) >= int(spec["completions"])
        if spec.get("completions") is None:
            return counts["succeeded"] > 0 and counts["active"] == 0
        return counts["succeeded"] >= int(spec["completions"])

    def _deadline_left(self, job: Resource) -> float | None:
        deadline = job["spec"].get("activeDeadlineSeconds")
        if not deadline:
            return None
        started = parse_time(job["status"]["startTime"]).timestamp()
        return started + float(deadline) - time.time()

    @staticmethod
    def _backoff_left(procs: list[ProcessStatus], failed: int) -> float:
        if failed == 0:
            return 0.0
        last = max((p.finished_at or 0.0) for p in procs if _is_failure(p))
        delay = min(_backoff_base() * 2.0 ** (failed - 1), _MAX_BACKOFF)
        return last + delay - time.time()

    # -- terminal transitions ---------------------------------------------------------------
    def _complete(self, job: Resource, procs: list[ProcessStatus]) -> Result | None:
        self._kill(procs)
        set_condition(
            job,
            "SuccessCriteriaMet",
            True,
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        )
        set_condition(
            job, "Complete", True, "CompletionsReached", "Reached expected number of succeeded pods"
        )
        job["status"]["completionTime"] = now_iso()
        job["status"]["active"] = 0
        job["status"]["ready"] = 0
        self.events.record(job, "Normal", "Completed", "Job completed")
        return _ttl_result(job)

    def _fail(
        self, job: Resource, procs: list[ProcessStatus], reason: str, message: str
    ) -> Result | None:
        self._kill(procs)
        set_condition(job, "FailureTarget", True, reason, message)
        set_condition(job, "Failed", True, reason, message)
        job["status"]["active"] = 0
        job["status"]["ready"] = 0
        self.events.record(job, "Warning", reason, message)
        return _ttl_result(job)

    def _suspend(self, job: Resource, procs: list[ProcessStatus]) -> Result | None:
        self._kill(procs)
        if not is_true(job, "Suspended"):
            set_condition(job, "Suspended", True, "JobSuspended", "Job suspended")
            self.events.record(job, "Normal", "Suspended", "Job suspended")
        job.setdefault("status", {})["active"] = 0
        return None

    def _after_finish(self, job: Resource, procs: list[ProcessStatus]) -> Result | None:
        self._kill(procs)
        result = _ttl_result(job)
        if result is not None and result.requeue_after is not None and result.requeue_after <= 0:
            md = job["metadata"]
            with contextlib.suppress(NotFoundError):
                self.store.delete(JOB, md["namespace"], md["name"], uid=md["uid"])
            return None
        return result

    # -- processes ---------------------------------------------------------------------------
    def _kill(self, procs: list[ProcessStatus]) -> None:
        for proc in procs:
            if not proc.state.finished:
                self.executor.kill(proc.name)


def _is_failure(proc: ProcessStatus) -> bool:
    return proc.state in (ProcessState.FAILED, ProcessState.LOST)


def _count(procs: list[ProcessStatus]) -> dict[str, int]:
    return {
        "active": sum(1 for p in procs if not p.state.finished),
        "ready": sum(1 for p in procs if p.state is ProcessState.RUNNING),
        "succeeded": sum(1 for p in procs if p.state is ProcessState.SUCCEEDED),
        "failed": sum(1 for p in procs if _is_failure(p)),
    }


def _write_counts(
    status: dict[str, Any], counts: dict[str, int], procs: list[ProcessStatus]
) -> None:
    for field in ("active", "ready", "succeeded", "failed"):
        if counts[field] or field in status:
            status[field] = counts[field]
    done = _succeeded_indexes(procs)
    if done:
        status["completedIndexes"] = _ranges(sorted(done))


def _succeeded_indexes(procs: list[ProcessStatus]) -> set[int]:
    return {
        int(p.labels[pods.LABEL_INDEX])
        for p in procs
        if p.state is ProcessState.SUCCEEDED and pods.LABEL_INDEX in p.labels
    }


def _indexes_to_start(
    spec: dict[str, Any], procs: list[ProcessStatus], counts: dict[str, int]
) -> list[int | None]:
    parallelism = int(spec.get("parallelism", 1))
    if spec.get("completionMode") == "Indexed":
        busy = {
            int(p.labels[pods.LABEL_INDEX])
            for p in procs
            if not p.state.finished and pods.LABEL_INDEX in p.labels
        }
        todo = [
            i
            for i in range(int(spec["completions"]))
            if i not in busy and i not in _succeeded_indexes(procs)
        ]
        return list(todo[: max(parallelism - counts["active"], 0)])
    if spec.get("completions") is None:
        wanted = parallelism if counts["succeeded"] == 0 else 0
    else:
        wanted = min(parallelism, int(spec["completions"]) - counts["succeeded"])
    return [None] * max(wanted - counts["active"], 0)


def _ranges(values: list[int]) -> str:
    """``[0, 1, 2, 4]`` -> ``"0-2,4"`` (Kubernetes' completedIndexes format)."""
    parts: list[str] = []
    start = prev = values[0]
    for value in [*values[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if value is not None:
            start = prev = value
    return ",".join(parts)


def _ttl_result(job: Resource) -> Result | None:
    ttl = job["spec"].get("ttlSecondsAfterFinished")
    status = job.get("status") or {}
    failed = get_condition(job, "Failed")
    finished = status.get("completionTime") or (failed or {}).get("lastTransitionTime")
    if ttl is None or not finished:
        return None
    return Result(requeue_after=parse_time(finished).timestamp() + float(ttl) - time.time())


def _soonest(*delays: float | None) -> float:
    return min(d for d in delays if d is not None)
