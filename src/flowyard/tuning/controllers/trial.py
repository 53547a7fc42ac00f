"""The Trial controller: runs one trial's run object and decides the trial's outcome.

Conditions as Katib writes them: ``Created`` (TrialCreated), ``Running`` (TrialRunning), then
one of ``Succeeded`` (TrialSucceeded), ``MetricsUnavailable`` (the run succeeded but the
objective never appeared), ``Failed`` (TrialFailed: the run's failureCondition held),
``Killed`` (TrialKilled: the run object disappeared, or the experiment ended) or
``EarlyStopped`` (TrialEarlyStopped: median stopping). ``Running`` turns False on any of them.

A finished trial's run object is deleted unless ``retainRun``; a trial that is stopped
(early-stopped or killed) with ``retainRun`` has its run object suspended instead, so it stays
for inspection while its processes are killed. The objective's reported values are saved in
the trial's directory (``objective.json``) when it finishes: median stopping compares running
trials with them.
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any, ClassVar

from flowyard.controllers.base import Controller, ObjectKey, Result
from flowyard.errors import AlreadyExistsError, FlowyardError, NotFoundError
from flowyard.resources.admission import admit
from flowyard.resources.conditions import get_condition, is_true, set_condition
from flowyard.resources.kinds import JOB
from flowyard.resources.meta import Resource, now_iso
from flowyard.resources.registry import REGISTRY, KindInfo
from flowyard.tuning.collect import collect
from flowyard.tuning.controllers.common import (
    EXPERIMENT,
    TRIAL,
    experiment_trials,
    finish_running,
    is_finished_trial,
    owner_name,
)
from flowyard.tuning.earlystopping import MedianStop
from flowyard.tuning.gjson import is_met
from flowyard.tuning.metrics import Observation, metric_names
from flowyard.tuning.runobject import build_run_object, trial_dir
from flowyard.tuning.study import STUDY_LABEL

EARLY_STOP_POLL_SECONDS = 0.2


def objective_history(trial: Resource) -> list[float]:
    """The saved objective values of a finished trial (empty when none were saved)."""
    md = trial["metadata"]
    path = trial_dir(md["namespace"], md["name"]) / "objective.json"
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [float(v) for v in values] if isinstance(values, list) else []


class TrialController(Controller):
    kind = TRIAL
    owns: ClassVar[tuple[KindInfo, ...]] = (JOB,)
    workers = 4

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            trial = self.store.get(TRIAL, key.namespace, key.name)
        except NotFoundError:
            return None
        if trial["metadata"].get("deletionTimestamp"):
            return None
        if (trial["metadata"].get("labels") or {}).get(STUDY_LABEL) == "true":
            return None  # a study's trial: its worker reports through the study API
        run_info = self._run_kind(trial)
        if run_info is None:
            return None
        if is_finished_trial(trial):
            self._cleanup(trial, run_info)
            return None
        try:
            run = self.store.get(run_info, key.namespace, key.name)
        except NotFoundError:
            return self._create_or_kill(trial, run_info)
        return self._observe(trial, run)

    # -- run object --------------------------------------------------------------------------
    def _run_kind(self, trial: Resource) -> KindInfo | None:
        run_spec = (trial.get("spec") or {}).get("runSpec") or {}
        try:
            return REGISTRY.get(run_spec.get("apiVersion"), run_spec.get("kind"))
        except NotFoundError as exc:
            if not is_finished_trial(trial):
                self._finish(trial, "Failed", "TrialFailed", f"Trial has failed: {exc}")
            return None

    def _create_or_kill(self, trial: Resource, run_info: KindInfo) -> Result | None:
        if is_true(trial, "Running"):
            # We created it before: someone deleted the run object under the trial.
            self._finish(trial, "Killed", "TrialKilled", "Trial has been killed")
            return None
        new = copy.deepcopy(trial)
        if get_condition(new, "Created") is None:
            set_condition(new, "Created", True, "TrialCreated", "Trial is created")
        new.setdefault("status", {}).setdefault("startTime", now_iso())
        run = build_run_object(trial)
        try:
            admit(run)
            self.store.create(run)
        except AlreadyExistsError:
            pass
        except FlowyardError as exc:
            self._finish(trial, "Failed", "TrialFailed", f"Trial has failed: {exc}")
            return None
        set_condition(new, "Running", True, "TrialRunning", "Trial is running")
        self.store.update_status(new)
        self.events.record(
            trial, "Normal", "JobCreated", f"Created {run_info.kind} {trial['metadata']['name']}"
        )
        return None

    def _observe(self, trial: Resource, run: Resource) -> Result | None:
        spec = trial.get("spec") or {}
        if is_met(run, str(spec.get("successCondition") or "")):
            self._complete(trial, failed=False)
            return None
        if is_met(run, str(spec.get("failureCondition") or "")):
            self._complete(trial, failed=True)
            return None
        if not is_true(trial, "Running"):
            new = copy.deepcopy(trial)
            set_condition(new, "Running", True, "TrialRunning", "Trial is running")
            self.store.update_status(new)
        return self._maybe_stop_early(trial)

    # -- outcomes ----------------------------------------------------------------------------
    def _complete(self, trial: Resource, *, failed: bool) -> None:
        observation, names = self._observation(trial)
        objective = names[0]
        if failed:
            outcome = ("Failed", "TrialFailed", "Trial has failed")
        elif observation.has(objective):
            outcome = ("Succeeded", "TrialSucceeded", "Trial has succeeded")
        else:
            outcome = ("MetricsUnavailable", "MetricsUnavailable", "Metrics are not available")
        self._finish(trial, *outcome, observation=observation)

    def _observation(self, trial: Resource) -> tuple[Observation, list[str]]:
        names = metric_names(trial.get("spec") or {})
        return Observation.of(collect(trial, names)), names

    def _finish(
        self,
        trial: Resource,
        cond_type: str,
        reason: str,
        message: str,
        observation: Observation | None = None,
    ) -> None:
        new = copy.deepcopy(trial)
        status = new.setdefault("status", {})
        if observation is not None:
            names = metric_names(trial.get("spec") or {})
            status["observation"] = observation.to_status(names)
            self._save_history(trial, observation.history.get(names[0], []))
        finish_running(new, cond_type, reason, message)
        status["completionTime"] = now_iso()
        self.store.update_status(new)
        if cond_type in ("Failed", "MetricsUnavailable"):
            self.events.record(trial, "Warning", reason, message)
        else:
            self.events.record(trial, "Normal", reason, message)

    @staticmethod
    def _save_history(trial: Resource, values: list[float]) -> None:
        md = trial["metadata"]
        directory = trial_dir(md["namespace"], md["name"])
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "objective.json.tmp"
        tmp.write_text(json.dumps(values))
        tmp.replace(directory / "objective.json")

    def _cleanup(self, trial: Resource, run_info: KindInfo) -> None:
        """A finished trial: delete its run object, or with ``retainRun`` stop it if it was
        stopped early or killed."""
        md = trial["metadata"]
        try:
            run = self.store.get(run_info, md["namespace"], md["name"])
        except NotFoundError:
            return
        if not (trial.get("spec") or {}).get("retainRun"):
            with contextlib.suppress(NotFoundError):
                self.store.delete(run_info, md["namespace"], md["name"], uid=run["metadata"]["uid"])
            return
        if is_true(trial, "EarlyStopped") or is_true(trial, "Killed"):
            _suspend(self.store, run)

    # -- median stopping ---------------------------------------------------------------------
    def _maybe_stop_early(self, trial: Resource) -> Result | None:
        experiment = self._experiment(trial)
        rule = MedianStop.from_spec(experiment["spec"]) if experiment else None
        if rule is None or experiment is None:
            return None
        observation, names = self._observation(trial)
        values = observation.history.get(names[0], [])
        if len(values) >= rule.start_step:
            completed = [
                objective_history(t)
                for t in experiment_trials(self.store, experiment)
                if is_true(t, "Succeeded")
            ]
            if rule.should_stop(values, completed):
                self._finish(
                    trial,
                    "EarlyStopped",
                    "TrialEarlyStopped",
                    "Trial is early stopped",
                    observation=observation,
                )
                return None
        return Result(requeue_after=EARLY_STOP_POLL_SECONDS)

    def _experiment(self, trial: Resource) -> Resource | None:
        name = owner_name(trial, "Experiment")
        if name is None:
            return None
        try:
            return self.store.get(EXPERIMENT, trial["metadata"]["namespace"], name)
        except NotFoundError:
            return None


def _suspend(store: Any, run: Resource) -> None:
    """Stop a retained run object's processes: ``spec.suspend`` (Job, TrainJob) or
    ``spec.runPolicy.suspend`` (Training Operator v1 kinds)."""
    new = copy.deepcopy(run)
    spec = new.setdefault("spec", {})
    if "runPolicy" in spec or str(run.get("apiVersion", "")).startswith("kubeflow.org/"):
        if (spec.get("runPolicy") or {}).get("suspend"):
            return
        spec.setdefault("runPolicy", {})["suspend"] = True
    else:
        if spec.get("suspend"):
            return
        spec["suspend"] = True
    with contextlib.suppress(NotFoundError):
        store.update(new)
