"""v1 job status as the Training Operator v1.9 writes it (pure functions over dicts).

Conditions are ``JobCondition``s (``type``, ``status``, ``reason``, ``message``,
``lastUpdateTime``, ``lastTransitionTime``) with upstream's update rules: a changed condition
moves to the end of the list (so ``conditions[-1]`` is the current state, which the ``State``
printer column shows); ``Running`` and ``Restarting`` replace each other; ``Succeeded`` or
``Failed`` set ``Running`` to False; nothing changes once ``Failed`` is True. Reasons are
``<Kind><Reason>`` (``PyTorchJobRunning``).

Restart rule (``restartPolicy``): ``Never`` fails the job; ``OnFailure`` and ``Always`` restart;
``ExitCode`` restarts on exit codes 128-255 (killed by a signal, e.g. 137 = SIGKILL, which may
be transient) and fails on 1-127 (the program's own error, permanent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowyard.resources.meta import now_iso

CREATED, RUNNING, RESTARTING = "Created", "Running", "Restarting"
SUCCEEDED, FAILED, SUSPENDED = "Succeeded", "Failed", "Suspended"


def is_retryable_exit_code(code: int | None) -> bool:
    """Upstream ``IsRetryableExitCode``: 128-255 retry, 1-127 are permanent."""
    return code is not None and code >= 128


def should_restart(restart_policy: str, exit_code: int | None) -> bool:
    """Whether a failed replica (non-zero ``exit_code``; None = unknown) is restarted."""
    if restart_policy in ("OnFailure", "Always"):
        return True
    if restart_policy == "ExitCode":
        return exit_code is None or is_retryable_exit_code(exit_code)
    return False


def condition(status: dict[str, Any], cond_type: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == cond_type:
            return dict(cond)
    return None


def is_true(status: dict[str, Any], cond_type: str) -> bool:
    cond = condition(status, cond_type)
    return bool(cond and cond.get("status") == "True")


def is_finished(status: dict[str, Any]) -> bool:
    return is_true(status, SUCCEEDED) or is_true(status, FAILED)


def update_job_conditions(
    status: dict[str, Any], cond_type: str, value: bool, reason: str, message: str
) -> bool:
    """Upstream ``UpdateJobConditions`` on a status dict, in place; True if it changed."""
    if is_true(status, FAILED):
        return False
    wanted = "True" if value else "False"
    current = condition(status, cond_type)
    if current and current.get("status") == wanted and current.get("reason") == reason:
        return False
    now = now_iso()
    new = {
        "type": cond_type,
        "status": wanted,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    }
    if current and current.get("status") == wanted:
        new["lastTransitionTime"] = current.get("lastTransitionTime", now)
    kept = []
    for cond in status.get("conditions") or []:
        ctype = cond.get("type")
        if ctype == cond_type or {ctype, cond_type} == {RUNNING, RESTARTING}:
            continue
        if cond_type in (FAILED, SUCCEEDED) and ctype == RUNNING and cond.get("status") == "True":
            cond = {**cond, "status": "False"}
        kept.append(cond)
    status["conditions"] = [*kept, new]
    return True


@dataclass
class ReplicaCounts:
    """Processes of one replica type in the current attempt."""

    active: int = 0
    succeeded: int = 0
    failed: int = 0
    succeeded_indexes: frozenset[int] = frozenset()

    def to_status(self, selector: str) -> dict[str, Any]:
        return {
            "active": self.active,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "selector": selector,
        }


def job_succeeded(
    kind: str, spec: dict[str, Any], replicas: dict[str, int], counts: dict[str, ReplicaCounts]
) -> bool:
    """The success rule of each kind, given the expected ``replicas`` per type.

    PyTorchJob/XGBoostJob: the Master succeeded, or without a Master all Workers did (elastic:
    any Worker). TFJob: the Chief/Master succeeded; without one, Worker 0 succeeded (default
    ``successPolicy``) or all Workers did (``AllWorkers``). MPIJob: the Launcher succeeded.
    """

    def done(rtype: str) -> bool:
        return rtype in replicas and counts.get(rtype, ReplicaCounts()).succeeded >= replicas[rtype]

    if kind == "MPIJob":
        return done("Launcher")
    if kind == "TFJob":
        for master in ("Chief", "Master"):
            if master in replicas:
                return done(master)
        if spec.get("successPolicy") == "AllWorkers":
            return done("Worker")
        return 0 in counts.get("Worker", ReplicaCounts()).succeeded_indexes or done("Worker")
    if "Master" in replicas:
        return done("Master")
    if kind == "PyTorchJob" and spec.get("elasticPolicy") is not None:
        return counts.get("Worker", ReplicaCounts()).succeeded > 0
    return done("Worker")


def messages(kind: str, name: str, namespace: str) -> dict[str, str]:
    """Upstream condition messages of ``kind`` (TFJob names ``namespace/name``)."""
    ref = f"{namespace}/{name}" if kind == "TFJob" else name
    return {
        CREATED: f"{kind} {name} is created.",
        RUNNING: f"{kind} {ref} is running.",
        SUCCEEDED: (
            f"{kind} {ref} successfully completed."
            if kind == "TFJob"
            else f"{kind} {name} is successfully completed."
        ),
        SUSPENDED: f"{kind} {name} is suspended.",
        "Resumed": f"{kind} {name} is resumed.",
        "Backoff": f"Job {name} has failed because it has reached the specified backoff limit",
        "Deadline": f"Job {name} has failed because it was active longer than specified deadline",
    }


def restarting_message(kind: str, name: str, failed: int, rtype: str) -> str:
    return f"{kind} {name} is restarting because {failed} {rtype} replica(s) failed."


def failed_message(
    kind: str, name: str, namespace: str, failed: int, rtype: str, exit_code_policy: bool
) -> str:
    if exit_code_policy:
        return f'job "{name}" is failing because "{rtype}" replica(s) failed.'
    if kind == "TFJob":
        return f"TFJob {namespace}/{name} has failed because {failed} {rtype} replica(s) failed."
    return f"{kind} {name} is failed because {failed} {rtype} replica(s) failed."
