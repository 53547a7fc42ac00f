"""What the three Katib controllers share: kind infos, labels, reasons, small store helpers."""

from __future__ import annotations

import hashlib
from typing import Any

from flowyard.resources.conditions import get_condition, is_true, set_condition
from flowyard.resources.meta import Resource
from flowyard.store.base import BaseStore
from flowyard.tuning.kinds import register_kinds
from flowyard.tuning.runobject import LABEL_EXPERIMENT

EXPERIMENT, TRIAL, SUGGESTION = register_kinds()

TERMINAL_TRIAL_CONDITIONS = ("Succeeded", "Failed", "Killed", "EarlyStopped", "MetricsUnavailable")


def experiment_trials(store: BaseStore, experiment: Resource) -> list[Resource]:
    """The Trials of ``experiment`` (by label, owned by this experiment's uid)."""
    md = experiment["metadata"]
    page = store.list(TRIAL, md["namespace"], label_selector=f"{LABEL_EXPERIMENT}={md['name']}")
    return [
        t
        for t in page.items
        if any(ref.get("uid") == md["uid"] for ref in t["metadata"].get("ownerReferences") or [])
    ]


def trial_name(experiment: Resource, index: int) -> str:
    """A fixed name for the ``index``-th assignment of an experiment: the same after a restart,
    so creating its Trial twice fails with AlreadyExists instead of duplicating it."""
    md = experiment["metadata"]
    digest = hashlib.sha256(f"{md['uid']}:{index}".encode()).hexdigest()[:8]
    return f"{md['name']}-{digest}"


def owner_name(obj: Resource, kind: str) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            return str(ref.get("name"))
    return None


def finish_running(obj: Resource, cond_type: str, reason: str, message: str) -> None:
    """Set the terminal condition ``cond_type`` and turn ``Running`` off (Katib keeps the
    Running condition with status False, its reason unchanged)."""
    running = get_condition(obj, "Running")
    if running is not None and running.get("status") == "True":
        set_condition(
            obj, "Running", False, str(running.get("reason")), str(running.get("message"))
        )
    set_condition(obj, cond_type, True, reason, message)


def is_finished_trial(trial: Resource) -> bool:
    return any(is_true(trial, c) for c in TERMINAL_TRIAL_CONDITIONS)


def remove_condition(obj: Resource, cond_type: str) -> None:
    status: dict[str, Any] = obj.setdefault("status", {})
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond_type]
