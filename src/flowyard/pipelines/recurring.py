"""KFP's recurring runs: ``pipelines.kubeflow.org/v2beta1 RecurringRun`` and its scheduler.

Shape (KFP v2beta1 field names, camelCase)::

    spec: {displayName, description,
           pipelineSpec | pipelineVersionRef: {pipelineName, pipelineVersionName},
           platformSpec, runtimeConfig: {parameters, pipelineRoot},
           experimentName, enableCaching, serviceAccount,
           trigger: {cronSchedule: {cron, startTime, endTime}}          # 6 fields, seconds
                  | {periodicSchedule: {intervalSecond, startTime, endTime}},  # first (or 5)
           maxConcurrency: 1..10 (default 1),
           noCatchup: false,
           mode: ENABLE | DISABLE}
    status: {status: ENABLED | DISABLED, lastFireTime, nextFireTime, activeRuns: [run names],
             message}

The scheduler (:class:`RecurringRunController`) fires schedule times that are due: every missed
time in order (catch-up), or only the newest one with ``noCatchup``, never more Runs at once
than ``maxConcurrency``. A fired Run is named ``<recurring run>-<schedule epoch seconds>``, so
firing the same time twice (a restart between creating the Run and recording
``status.lastFireTime``) finds the Run already there instead of creating a second one.
"""

from __future__ import annotations

import copy
import math
import threading
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from flowyard.controllers.base import Controller, ObjectKey, Result
from flowyard.errors import AlreadyExistsError, FieldCause, FlowyardError, NotFoundError
from flowyard.pipelines.kinds import API_VERSION, FINAL_RUN_STATES, GROUP, RUN, VERSION
from flowyard.pipelines.kinds import validate_run as _validate_run_spec
from flowyard.resources.admission import admit
from flowyard.resources.meta import Resource
from flowyard.resources.registry import REGISTRY, KindInfo, KindRegistry, PrinterColumn

RECURRING_RUN = KindInfo(
    group=GROUP,
    version=VERSION,
    kind="RecurringRun",
    plural="recurringruns",
    columns=(
        PrinterColumn("Status", ".status.status"),
        PrinterColumn("Last Fire", ".status.lastFireTime", "date"),
        PrinterColumn("Next Fire", ".status.nextFireTime"),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)
LABEL_RECURRING_RUN = "pipelines.kubeflow.org/recurring-run"
ANNOTATION_SCHEDULED_AT = "pipelines.kubeflow.org/scheduled-at"
MAX_CONCURRENCY = 10
BLOCKED_POLL_SECONDS = 2.0
_RUN_FIELDS = (
    "pipelineSpec",
    "pipelineVersionRef",
    "platformSpec",
    "runtimeConfig",
    "experimentName",
    "enableCaching",
    "description",
)
_lock = threading.Lock()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_of(value: Any) -> float | None:
    if value in (None, ""):
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def cron_args(expression: str) -> dict[str, Any]:
    """croniter options for a KFP cron: 6 fields have seconds first (robfig/cron)."""
    return {"second_at_beginning": len(expression.split()) == 6}


# -- validation ------------------------------------------------------------------------


def _trigger_causes(trigger: Any) -> list[FieldCause]:
    if not isinstance(trigger, dict) or not (
        ("cronSchedule" in trigger) ^ ("periodicSchedule" in trigger)
    ):
        return [
            FieldCause(
                "spec.trigger",
                "Required value: set exactly one of trigger.cronSchedule {cron} and "
                "trigger.periodicSchedule {intervalSecond}",
                "FieldValueRequired",
            )
        ]
    which = "cronSchedule" if "cronSchedule" in trigger else "periodicSchedule"
    sched = trigger[which] if isinstance(trigger[which], dict) else {}
    causes = []
    if which == "cronSchedule":
        cron = str(sched.get("cron") or "")
        if not cron or not croniter.is_valid(cron, **cron_args(cron)):
            causes.append(
                FieldCause(
                    "spec.trigger.cronSchedule.cron",
                    f"Invalid value: {cron!r}: use 6 fields with seconds first, as KFP does "
                    "(e.g. '0 0 9 ? * 2-6'), or 5 standard fields",
                )
            )
    else:
        try:
            ok = int(sched.get("intervalSecond") or 0) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            causes.append(
                FieldCause(
                    "spec.trigger.periodicSchedule.intervalSecond",
                    "Invalid value: must be a positive number of seconds",
                )
            )
    for field in ("startTime", "endTime"):
        try:
            epoch_of(sched.get(field))
        except ValueError:
            causes.append(
                FieldCause(f"spec.trigger.{which}.{field}", "Invalid value: not an RFC 3339 time")
            )
    return causes


def validate_recurring_run(new: Resource, old: Resource | None) -> list[FieldCause]:
    spec = new.get("spec")
    if not isinstance(spec, dict):
        return [FieldCause("spec", "Required value", "FieldValueRequired")]
    causes = _trigger_causes(spec.get("trigger"))
    mc = spec.get("maxConcurrency", 1)
    if isinstance(mc, bool) or not isinstance(mc, int) or not 1 <= mc <= MAX_CONCURRENCY:
        causes.append(
            FieldCause(
                "spec.maxConcurrency",
                f"Invalid value: {mc!r}: must be between 1 and {MAX_CONCURRENCY}",
            )
        )
    if spec.get("mode", "ENABLE") not in ("ENABLE", "DISABLE"):
        causes.append(FieldCause("spec.mode", "Unsupported value: use ENABLE or DISABLE"))
    run_spec = {k: spec[k] for k in _RUN_FIELDS if k in spec}
    run_spec.setdefault("runtimeConfig", {"parameters": {}})
    # The same checks a Run gets (exactly one pipeline source; the inline IR and parameters).
    causes += _validate_run_spec({"spec": run_spec}, None)
    return causes


def default_recurring_run(obj: Resource) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("maxConcurrency", 1)
        spec.setdefault("noCatchup", False)
        spec.setdefault("mode", "ENABLE")


def register_recurring_run_kind(registry: KindRegistry = REGISTRY) -> KindInfo:
    """Add the RecurringRun kind and its admission hooks to ``registry``; idempotent."""
    with _lock:
        try:
            info = registry.get(API_VERSION, "RecurringRun")
        except FlowyardError:
            info = registry.register(RECURRING_RUN)
        registry.add_defaulter(API_VERSION, "RecurringRun", default_recurring_run)
        registry.add_validator(API_VERSION, "RecurringRun", validate_recurring_run)
        return info


# -- schedule math -----------------------------------------------------------------------


def _schedule(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    trigger = spec.get("trigger") or {}
    if "cronSchedule" in trigger:
        return "cron", trigger["cronSchedule"] or {}
    return "periodic", trigger.get("periodicSchedule") or {}


def next_fire(spec: dict[str, Any], anchor: float, after: float) -> float | None:
    """The first schedule time strictly after ``after``, or None past ``endTime``. As in KFP,
    times are strictly after the start (``startTime``, else the creation time ``anchor``):
    periodic ones are ``start + k * interval`` for k >= 1, cron ones the cron's matches."""
    kind, sched = _schedule(spec)
    start = epoch_of(sched.get("startTime"))
    end = epoch_of(sched.get("endTime"))
    if kind == "cron":
        cron = str(sched["cron"])
        base = max(after, start) if start is not None else after
        when = croniter(cron, datetime.fromtimestamp(base, UTC), **cron_args(cron)).get_next(float)
    else:
        interval = float(sched["intervalSecond"])
        origin = (start if start is not None else anchor) + interval
        k = max(0, math.floor((after - origin) / interval) + 1)
        when = origin + k * interval
    return None if end is not None and when > end else float(when)


def newest_fire(spec: dict[str, Any], anchor: float, now: float) -> float | None:
    """The newest schedule time at or before ``now`` (within start/end), or None."""
    kind, sched = _schedule(spec)
    start = epoch_of(sched.get("startTime"))
    end = epoch_of(sched.get("endTime"))
    upper = min(now, end) if end is not None else now
    if kind == "cron":
        cron = str(sched["cron"])
        when = float(
            croniter(cron, datetime.fromtimestamp(upper + 0.001, UTC), **cron_args(cron)).get_prev(
                float
            )
        )
        earliest = start if start is not None else anchor
        return when if when > earliest else None
    interval = float(sched["intervalSecond"])
    origin = (start if start is not None else anchor) + interval
    if upper < origin:
        return None
    return origin + math.floor((upper - origin) / interval) * interval


def _first_after(spec: dict[str, Any], anchor: float) -> float:
    """Fire times are strictly after this: the start time when set (a past start time
    backfills, as in KFP), else the creation time."""
    start = epoch_of(_schedule(spec)[1].get("startTime"))
    return start if start is not None else anchor


def due_times(
    spec: dict[str, Any], anchor: float, last: float | None, now: float, limit: int
) -> list[float]:
    """Schedule times after ``last`` (else after the anchor) up to ``now``: the first
    ``limit`` of them in order (catch-up), or only the newest with ``noCatchup``."""
    after = last if last is not None else _first_after(spec, anchor)
    if spec.get("noCatchup"):
        newest = newest_fire(spec, anchor, now)
        return [newest] if newest is not None and newest > after else []
    times: list[float] = []
    when = next_fire(spec, anchor, after)
    while when is not None and when <= now and len(times) < limit:
        times.append(when)
        when = next_fire(spec, anchor, when)
    return times


# -- the scheduler -----------------------------------------------------------------------


def run_name_for(recurring_run: Resource, when: float) -> str:
    """The deterministic name of the Run fired at schedule time ``when``."""
    return f"{recurring_run['metadata']['name'][:52]}-{int(when)}"


def run_for(recurring_run: Resource, when: float) -> Resource:
    """The Run a recurring run creates for schedule time ``when``."""
    md, spec = recurring_run["metadata"], recurring_run["spec"]
    display = spec.get("displayName") or md["name"]
    run_spec = copy.deepcopy({k: spec[k] for k in _RUN_FIELDS if k in spec})
    run_spec["displayName"] = f"{display} {iso(when)}"
    run_spec["recurringRunName"] = md["name"]
    return {
        "apiVersion": API_VERSION,
        "kind": "Run",
        "metadata": {
            "name": run_name_for(recurring_run, when),
            "namespace": md.get("namespace") or "default",
            "labels": {LABEL_RECURRING_RUN: md["name"]},
            "annotations": {
                ANNOTATION_SCHEDULED_AT: iso(when),
                "pipelines.kubeflow.org/created-at": f"{datetime.now(UTC).timestamp():.6f}",
            },
        },
        "spec": run_spec,
    }


class RecurringRunController(Controller):
    """Fires the due schedule times of each enabled RecurringRun (see the module docstring);
    requeues itself for the next one. State lives in ``status`` only."""

    kind = RECURRING_RUN
    workers = 1

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            rr = self.store.get(RECURRING_RUN, key.namespace, key.name)
        except NotFoundError:
            return None
        if rr["metadata"].get("deletionTimestamp"):
            return None
        spec, status = rr.get("spec") or {}, dict(rr.get("status") or {})
        enabled = spec.get("mode", "ENABLE") == "ENABLE"
        active = self._active_runs(key.namespace, status.get("activeRuns") or [])
        now = datetime.now(UTC).timestamp()
        anchor = epoch_of(rr["metadata"].get("creationTimestamp")) or now
        last = epoch_of(status.get("lastFireTime"))
        room = max(0, int(spec.get("maxConcurrency") or 1) - len(active))
        blocked = False
        if enabled:
            due = due_times(spec, anchor, last, now, limit=max(room, 1))
            blocked = len(due) > room
            for when in due[:room]:
                active.append(self._fire(rr, when))
                last = when
        upcoming = next_fire(spec, anchor, last if last is not None else _first_after(spec, anchor))
        new_status = {
            **status,
            "status": "ENABLED" if enabled else "DISABLED",
            "activeRuns": active,
            "lastFireTime": iso(last) if last is not None else None,
            "nextFireTime": iso(upcoming) if enabled and upcoming is not None else None,
        }
        new_status = {k: v for k, v in new_status.items() if v is not None}
        if new_status != status:
            self.store.update_status({**rr, "status": new_status})
        return self._requeue(enabled, blocked, active, upcoming, now)

    @staticmethod
    def _requeue(
        enabled: bool, blocked: bool, active: list[str], upcoming: float | None, now: float
    ) -> Result | None:
        if not enabled:
            return None
        waits = []
        if blocked or active:
            waits.append(BLOCKED_POLL_SECONDS)  # a finished run frees a concurrency slot
        if upcoming is not None:
            waits.append(max(0.05, upcoming - now))
        return Result(requeue_after=min(waits)) if waits else None

    def _active_runs(self, namespace: str, names: list[str]) -> list[str]:
        active = []
        for name in names:
            try:
                run = self.store.get(RUN, namespace, name)
            except NotFoundError:
                continue
            if (run.get("status") or {}).get("state") not in FINAL_RUN_STATES:
                active.append(name)
        return active

    def _fire(self, rr: Resource, when: float) -> str:
        run = run_for(rr, when)
        try:
            admit(run)
            self.store.create(run)
            self.events.record(
                rr, "Normal", "Fired", f"created Run {run['metadata']['name']} for {iso(when)}"
            )
        except AlreadyExistsError:
            pass  # fired before a restart that lost the status write: not again
        except FlowyardError as exc:
            self.events.record(
                rr, "Warning", "FireFailed", f"cannot create the Run for {iso(when)}: {exc}"
            )
        return str(run["metadata"]["name"])
