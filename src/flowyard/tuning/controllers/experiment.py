"""The Experiment controller: Suggestion requests, Trial creation, status and the end.

Each reconcile (woken by any change of the Experiment, its Suggestion or its Trials):

1. ``Created`` (ExperimentCreated) and ``startTime`` on first sight.
2. Counters, trial lists and ``currentOptimalTrial`` from the Trials (:mod:`..summary`).
3. A finished experiment stays finished, and its active trials are stopped (marked
   ``Killed``; Katib leaves them running) — unless it succeeded with
   ``ExperimentMaxTrialsReached``, its ``resumePolicy`` is not ``Never`` and ``maxTrialCount``
   was raised above the completed trials: then it is ``Restarting`` and runs again.
4. The end, in Katib's order: goal reached, more failed trials than ``maxFailedTrialCount``,
   ``maxTrialCount`` trials completed, suggestion end with nothing active.
5. Otherwise ``Running``: ``min(parallelTrialCount - active, maxTrialCount - trials)`` new
   trials, first from stored assignments without a Trial (after a restart), then by raising
   the Suggestion's ``spec.requests``.
"""

from __future__ import annotations

import copy
from typing import Any

from flowyard.controllers.base import Controller, ObjectKey, Result
from flowyard.errors import AlreadyExistsError, ConflictError, InvalidError, NotFoundError
from flowyard.resources.conditions import get_condition, is_true, set_condition
from flowyard.resources.meta import Resource, now_iso, owner_reference
from flowyard.tuning.configmap import resolve_trial_spec
from flowyard.tuning.controllers.common import (
    EXPERIMENT,
    SUGGESTION,
    TRIAL,
    experiment_trials,
    finish_running,
    is_finished_trial,
    remove_condition,
)
from flowyard.tuning.kinds import API_VERSION
from flowyard.tuning.study import END_ANNOTATION as STUDY_END_ANNOTATION
from flowyard.tuning.study import STUDY_LABEL
from flowyard.tuning.summary import Summary, apply_summary, end_reason, summarize
from flowyard.tuning.trials import new_trial


class ExperimentController(Controller):
    kind = EXPERIMENT
    owns = (TRIAL, SUGGESTION)
    workers = 2

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            experiment = self.store.get(EXPERIMENT, key.namespace, key.name)
        except NotFoundError:
            return None
        if experiment["metadata"].get("deletionTimestamp"):
            return None
        new = copy.deepcopy(experiment)
        status = new.setdefault("status", {})
        if get_condition(new, "Created") is None:
            set_condition(new, "Created", True, "ExperimentCreated", "Experiment is created")
            status["startTime"] = now_iso()
        trials = experiment_trials(self.store, experiment)
        summary = summarize(new["spec"], trials)
        apply_summary(status, summary)
        if new["metadata"].get("labels", {}).get(STUDY_LABEL) == "true":
            self._drive_study(new, summary)
        elif _completed(new) and not self._restart(new, summary):
            self._stop_active(trials)
        else:
            self._drive(new, trials, summary)
        if new.get("status") != experiment.get("status"):
            status["lastReconcileTime"] = now_iso()
            self.store.update_status(new)
        return None

    def _drive(self, exp: Resource, trials: list[Resource], summary: Summary) -> None:
        suggestion = self._suggestion(exp)
        ended = is_true(suggestion, "Succeeded")
        pending = _unmade(suggestion, trials)
        end = end_reason(exp["spec"], summary, ended and not pending)
        if end is not None:
            cond, reason, message = end
            remove_condition(exp, "Restarting")
            finish_running(exp, cond, reason, message)
            exp["status"]["completionTime"] = now_iso()
            self.events.record(exp, "Normal" if cond == "Succeeded" else "Warning", reason, message)
            self._stop_active(trials)
            return
        if not is_true(exp, "Running"):
            set_condition(exp, "Running", True, "ExperimentRunning", "Experiment is running")
            remove_condition(exp, "Restarting")
        spec = exp["spec"]
        room = int(spec.get("maxTrialCount") or 1 << 30) - summary.total
        add = min(int(spec.get("parallelTrialCount") or 3) - summary.active, room)
        if add <= 0:
            return
        for item in pending[:add]:
            if not self._create_trial(exp, item):
                return
        more = add - len(pending[:add])
        if more > 0 and not ended:
            self._request(
                suggestion, len((suggestion.get("status") or {}).get("suggestions") or []) + more
            )

    def _drive_study(self, exp: Resource, summary: Summary) -> None:
        """A study (:mod:`flowyard.tuning.study`): workers ask for its trials, so only the
        status and the end (same rules; suggestion end from the study's annotation)."""
        if _completed(exp):
            return
        ended = (exp["metadata"].get("annotations") or {}).get(STUDY_END_ANNOTATION) == "true"
        end = end_reason(exp["spec"], summary, ended)
        if end is not None:
            cond, reason, message = end
            finish_running(exp, cond, reason, message)
            exp["status"]["completionTime"] = now_iso()
            self.events.record(exp, "Normal" if cond == "Succeeded" else "Warning", reason, message)
        elif not is_true(exp, "Running"):
            set_condition(exp, "Running", True, "ExperimentRunning", "Experiment is running")

    def _create_trial(self, exp: Resource, item: dict[str, Any]) -> bool:
        """Create the Trial for ``item``; on a template that cannot be rendered the
        experiment fails (False)."""
        try:
            self.store.create(new_trial(exp, item, self._configmap_template(exp)))
        except AlreadyExistsError:
            pass
        except InvalidError as exc:
            message = f"Experiment has failed: its trial template cannot be rendered: {exc}"
            finish_running(exp, "Failed", "ExperimentFailed", message)
            exp["status"]["completionTime"] = now_iso()
            self.events.record(exp, "Warning", "ExperimentFailed", message)
            return False
        return True

    def _configmap_template(self, exp: Resource) -> dict[str, Any] | None:
        """The trial spec from ``trialTemplate.configMap``, or None when the template is
        inline. InvalidError when it cannot be resolved (the experiment then fails)."""
        if not (exp["spec"].get("trialTemplate") or {}).get("configMap"):
            return None
        return resolve_trial_spec(self.store, exp["spec"])

    # -- suggestion --------------------------------------------------------------------------
    def _suggestion(self, exp: Resource) -> Resource:
        md = exp["metadata"]
        try:
            return self.store.get(SUGGESTION, md["namespace"], md["name"])
        except NotFoundError:
            pass
        spec = exp["spec"]
        body: Resource = {
            "apiVersion": API_VERSION,
            "kind": "Suggestion",
            "metadata": {
                "name": md["name"],
                "namespace": md["namespace"],
                "labels": {"katib.kubeflow.org/experiment": md["name"]},
                "ownerReferences": [owner_reference(exp)],
            },
            "spec": {
                "algorithm": spec["algorithm"],
                "requests": 0,
                "resumePolicy": spec.get("resumePolicy") or "Never",
            },
        }
        if spec.get("earlyStopping"):
            body["spec"]["earlyStopping"] = spec["earlyStopping"]
        try:
            return self.store.create(body)
        except AlreadyExistsError:
            return self.store.get(SUGGESTION, md["namespace"], md["name"])

    def _request(self, suggestion: Resource, requests: int) -> None:
        if int(suggestion["spec"].get("requests") or 0) >= requests:
            return
        new = copy.deepcopy(suggestion)
        new["spec"]["requests"] = requests
        self.store.update(new)

    # -- ending ------------------------------------------------------------------------------
    def _restart(self, exp: Resource, summary: Summary) -> bool:
        """Restart a finished experiment whose ``maxTrialCount`` was raised (Katib's rule)."""
        succeeded = get_condition(exp, "Succeeded")
        if (
            succeeded is None
            or succeeded.get("status") != "True"
            or succeeded.get("reason") != "ExperimentMaxTrialsReached"
            or exp["spec"].get("resumePolicy", "Never") == "Never"
            or int(exp["spec"].get("maxTrialCount") or 0) <= summary.completed
        ):
            return False
        remove_condition(exp, "Succeeded")
        exp["status"].pop("completionTime", None)
        set_condition(exp, "Restarting", True, "ExperimentRestarting", "Experiment is restarted")
        self.events.record(exp, "Normal", "ExperimentRestarting", "Experiment is restarted")
        return True

    def _stop_active(self, trials: list[Resource]) -> None:
        for trial in trials:
            if is_finished_trial(trial):
                continue
            new = copy.deepcopy(trial)
            finish_running(
                new, "Killed", "TrialKilled", "Trial has been killed: the experiment ended"
            )
            new.setdefault("status", {})["completionTime"] = now_iso()
            try:
                self.store.update_status(new)
            except (ConflictError, NotFoundError):
                continue  # the Trial changed meanwhile; its change wakes us again


def _completed(exp: Resource) -> bool:
    return is_true(exp, "Succeeded") or is_true(exp, "Failed")


def _unmade(suggestion: Resource, trials: list[Resource]) -> list[dict[str, Any]]:
    """Stored assignments that have no Trial yet, in hand-out order."""
    made = {t["metadata"]["name"] for t in trials}
    return [
        s
        for s in (suggestion.get("status") or {}).get("suggestions") or []
        if s.get("name") not in made
    ]
