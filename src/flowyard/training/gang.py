"""Executor-facing helpers shared by the v1 and v2 gang runners: launch a gang, find and stop
its processes, count them per replica type.

Runner state lives in the job's ``status.flowyard`` (``attempt``: the current gang attempt,
``restarts``: how many times the gang was restarted, ``network``: the endpoints of the current
attempt), so a controller that restarts picks up where the last one stopped: processes carry
the job uid and attempt in their labels and are found again with ``executor.list``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flowyard.controllers.base import LABEL_UID
from flowyard.errors import NotFoundError
from flowyard.executors.base import BaseExecutor, ProcessState, ProcessStatus
from flowyard.training.plan import LABEL_ATTEMPT, LABEL_REPLICA_INDEX, LABEL_REPLICA_TYPE, Member
from flowyard.training.status import ReplicaCounts

log = logging.getLogger(__name__)

STATE_KEY = "flowyard"
ACTIVE = (ProcessState.PENDING, ProcessState.RUNNING)


@dataclass
class SyncResult:
    """What a reconcile should persist and do next.

    ``status``: the job's new ``status`` (write it with ``update_status``). ``requeue_after``:
    seconds until the runner wants to look again (deadline, TTL, or a safety poll while
    processes run; process state changes also trigger reconciles). ``delete``: the TTL after
    finishing has passed, delete the job. ``events``: ``(type, reason, message)`` to record.
    """

    status: dict[str, Any]
    requeue_after: float | None = None
    delete: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)


def runner_state(status: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = status.setdefault(STATE_KEY, {})
    state.setdefault("attempt", 0)
    state.setdefault("restarts", 0)
    return state


def job_processes(executor: BaseExecutor, uid: str) -> list[ProcessStatus]:
    return executor.list({LABEL_UID: uid}) if uid else []


def of_attempt(procs: Iterable[ProcessStatus], attempt: int) -> list[ProcessStatus]:
    return [p for p in procs if p.labels.get(LABEL_ATTEMPT) == str(attempt)]


def kill_all(executor: BaseExecutor, procs: Iterable[ProcessStatus], grace: float) -> int:
    """Stop every process of ``procs`` that may still run; return how many were signalled."""
    count = 0
    for proc in procs:
        if proc.state in ACTIVE:
            try:
                executor.kill(proc.name, grace_seconds=grace)
                count += 1
            except NotFoundError:
                continue
    return count


def forget_finished(
    executor: BaseExecutor, procs: Iterable[ProcessStatus], only_killed: bool = False
) -> None:
    for proc in procs:
        if proc.state.finished and (not only_killed or proc.state == ProcessState.KILLED):
            try:
                executor.forget(proc.name)
            except NotFoundError:
                continue


def launch(executor: BaseExecutor, members: list[Member]) -> list[ProcessStatus]:
    """Start ``members`` as one gang (all or none; they may wait in the queue together)."""
    return executor.launch_gang([m.spec for m in members])


def created_events(job: dict[str, Any], members: list[Member]) -> list[tuple[str, str, str]]:
    """One ``SuccessfulCreatePod`` event per launched replica, named like the upstream pod (and
    like its log: ``flowyard logs <kind>/<job> -c <pod>``)."""
    name = job["metadata"]["name"]
    return [
        ("Normal", "SuccessfulCreatePod", f"Created pod: {name}-{m.rtype.lower()}-{m.index}")
        for m in members
    ]


def counts_by_type(procs: Iterable[ProcessStatus]) -> dict[str, ReplicaCounts]:
    """Active/succeeded/failed per canonical replica type label (lower case)."""
    out: dict[str, ReplicaCounts] = {}
    for proc in procs:
        rtype = proc.labels.get(LABEL_REPLICA_TYPE, "")
        counts = out.setdefault(rtype, ReplicaCounts())
        if proc.state in ACTIVE:
            counts.active += 1
        elif proc.state == ProcessState.SUCCEEDED:
            counts.succeeded += 1
            index = int(proc.labels.get(LABEL_REPLICA_INDEX, "-1"))
            counts.succeeded_indexes = counts.succeeded_indexes | {index}
        else:
            counts.failed += 1
    return out


def failed_members(procs: Iterable[ProcessStatus]) -> list[ProcessStatus]:
    return [p for p in procs if p.state.finished and p.state != ProcessState.SUCCEEDED]


def deadline_hit(procs: Iterable[ProcessStatus]) -> bool:
    """True if the executor ended a process for passing its deadline."""
    return any(p.reason == "DeadlineExceeded" for p in procs)
