"""Vizier-style studies for remote workers, over the same engine and resources as Experiments.

A *study* is a ``kubeflow.org/v1beta1`` Experiment labelled ``tuning.flowyard.io/study: "true"``
with no trial template: its Trials are not run by flowyard but handed to workers that ask for
them (``suggest``), report measurements, ask whether to stop, and complete them. So a study
shows up in ``flowyard get experiments``, its counters and ``currentOptimalTrial`` are kept by
the Experiment controller, and its suggestions come from :func:`build_engine` with the same
algorithms, settings and validation.

Contract of :class:`StudyService` (all methods synchronous; errors are flowyard errors):

* ``suggest(count, client_id)``: when ``client_id`` already has active trials they are returned
  again (a worker that restarts gets its work back, Vizier's idempotency); otherwise up to
  ``count`` new trials, fewer when ``maxTrialCount`` is reached or the algorithm has nothing
  ready, none when the study is over. Calls for one study are serialised in this process; trial
  names are ``<study>-<index>``, so a duplicate cannot be created even across processes.
* a measurement is ``{"stepCount": int?, "metrics": [{"metricId": name, "value": number}]}``;
  measurements are appended to ``measurements.jsonl`` in the trial's directory and the Trial's
  ``status.observation`` (min/max/latest) is recomputed from them.
* ``check_early_stopping``: the experiment's ``medianstop`` rule over the objective values
  measured so far against the succeeded trials; a trial told to stop is ``EarlyStopped``.
* ``complete``: ``Succeeded`` (``MetricsUnavailable`` when the objective was never measured,
  ``Failed`` when the worker says the trial is infeasible); completing a finished trial returns it
  unchanged (retries are safe).
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections.abc import Mapping
from typing import Any

from flowyard.errors import ConflictError, InvalidError, NotFoundError
from flowyard.resources.conditions import set_condition
from flowyard.resources.meta import Resource, now_iso
from flowyard.store.base import BaseStore
from flowyard.tuning.algorithms import build_engine
from flowyard.tuning.earlystopping import MedianStop
from flowyard.tuning.engine import SuggestionEndReached, SuggestionEngine, TrialState
from flowyard.tuning.kinds import API_VERSION, register_kinds
from flowyard.tuning.metrics import MetricLog, Observation, metric_names
from flowyard.tuning.records import record_from_trial, trial_state
from flowyard.tuning.runobject import LABEL_EXPERIMENT, trial_dir
from flowyard.tuning.space import SearchSpace
from flowyard.tuning.trials import trial_resource

EXPERIMENT, TRIAL, _ = register_kinds()

STUDY_LABEL = "tuning.flowyard.io/study"
CLIENT_ANNOTATION = "tuning.flowyard.io/client-id"
INDEX_ANNOTATION = "tuning.flowyard.io/index"
END_ANNOTATION = "tuning.flowyard.io/suggestion-end"


def is_study(obj: Resource) -> bool:
    """Whether an Experiment (or one of its Trials) belongs to a study."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(STUDY_LABEL) == "true"


def study_experiment(namespace: str, name: str, spec: Mapping[str, Any]) -> Resource:
    """The Experiment that stores a study (admitted like any Experiment, minus the template)."""
    if not isinstance(spec, Mapping):
        raise InvalidError("spec must be an object (an ExperimentSpec without trialTemplate)")
    for field in ("trialTemplate", "metricsCollectorSpec", "nasConfig"):
        if field in spec:
            raise InvalidError(
                f"spec.{field}: a study's trials are run by its workers; remove this field"
            )
    return {
        "apiVersion": API_VERSION,
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": namespace, "labels": {STUDY_LABEL: "true"}},
        "spec": copy.deepcopy(dict(spec)),
    }


def _index(trial: Resource) -> int:
    return int(((trial["metadata"].get("annotations") or {}).get(INDEX_ANNOTATION)) or 0)


def measurements_file(trial: Resource) -> Any:
    md = trial["metadata"]
    return trial_dir(md["namespace"], md["name"]) / "measurements.jsonl"


def read_measurements(trial: Resource) -> list[dict[str, Any]]:
    try:
        lines = measurements_file(trial).read_text().splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def _logs(measurements: list[dict[str, Any]]) -> list[MetricLog]:
    return [
        MetricLog(str(m["metricId"]), float(m["value"]), str(entry.get("time") or ""))
        for entry in measurements
        for m in entry.get("metrics") or []
    ]


def parse_measurement(body: object) -> dict[str, Any]:
    """A measurement from a request body, checked (InvalidError naming the field)."""
    if not isinstance(body, Mapping):
        raise InvalidError("measurement must be an object with stepCount and metrics")
    metrics = body.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise InvalidError("measurement.metrics must be a non-empty list of {metricId, value}")
    out = []
    for i, item in enumerate(metrics):
        name = item.get("metricId") if isinstance(item, Mapping) else None
        value = item.get("value") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InvalidError(f"measurement.metrics[{i}].metricId must be a metric name")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidError(f"measurement.metrics[{i}].value must be a finite number")
        out.append({"metricId": name, "value": float(value)})
    step = body.get("stepCount")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        raise InvalidError("measurement.stepCount must be an integer")
    return {"stepCount": step, "metrics": out, "time": now_iso()}


class StudyService:
    """Study operations on a store (see the module docstring)."""

    def __init__(self, store: BaseStore) -> None:
        self.store = store
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._engines: dict[str, SuggestionEngine] = {}

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def study(self, namespace: str, name: str) -> Resource:
        exp = self.store.get(EXPERIMENT, namespace, name)
        if not is_study(exp):
            raise NotFoundError(f'study "{name}" not found (an Experiment with that name exists)')
        return exp

    def trials(self, study: Resource) -> list[Resource]:
        md = study["metadata"]
        page = self.store.list(
            TRIAL, md["namespace"], label_selector=f"{LABEL_EXPERIMENT}={md['name']}"
        )
        own = [
            t
            for t in page.items
            if any(r.get("uid") == md["uid"] for r in t["metadata"].get("ownerReferences") or [])
        ]
        return sorted(own, key=_index)

    def trial(self, namespace: str, study: str, name: str) -> Resource:
        trial = self.store.get(TRIAL, namespace, name)
        if (trial["metadata"].get("labels") or {}).get(LABEL_EXPERIMENT) != study:
            raise NotFoundError(f'trial "{name}" is not a trial of study "{study}"')
        return trial

    # -- suggest ------------------------------------------------------------------------------
    def suggest(self, namespace: str, name: str, count: int, client_id: str) -> list[Resource]:
        if count < 1:
            raise InvalidError("suggestionCount must be at least 1")
        with self._lock(namespace, name):
            study = self.study(namespace, name)
            trials = self.trials(study)
            if client_id:
                mine = [
                    t
                    for t in trials
                    if trial_state(t).active
                    and (t["metadata"].get("annotations") or {}).get(CLIENT_ANNOTATION) == client_id
                ]
                if mine:
                    return mine
            if _finished(study):
                return []
            limit = study["spec"].get("maxTrialCount")
            room = count if limit is None else min(count, int(limit) - len(trials))
            if room <= 0:
                return []
            return self._new_trials(study, trials, room, client_id)

    def _new_trials(
        self, study: Resource, trials: list[Resource], count: int, client_id: str
    ) -> list[Resource]:
        md = study["metadata"]
        engine = self._engines.get(md["uid"])
        if engine is None:
            engine = build_engine(study["spec"], uid=md["uid"], name=md["name"])
            self._engines[md["uid"]] = engine
        history = [
            record_from_trial(t, study["spec"], self._objective_values(study, t)) for t in trials
        ]
        try:
            suggestions = engine.suggest(count, history)
        except SuggestionEndReached:
            self._mark_end(study)
            return []
        created = []
        for offset, suggestion in enumerate(suggestions):
            index = len(trials) + offset
            trial_name = suggestion.name or f"{md['name']}-{index}"
            engine.prepare(suggestion)
            trial = self._trial_object(study, trial_name, index, suggestion, client_id)
            created.append(self._start(self.store.create(trial)))
        return created

    def _trial_object(
        self, study: Resource, name: str, index: int, suggestion: Any, client_id: str
    ) -> Resource:
        md = study["metadata"]
        annotations = {INDEX_ANNOTATION: str(index)}
        if client_id:
            annotations[CLIENT_ANNOTATION] = client_id
        labels = {**suggestion.labels, LABEL_EXPERIMENT: md["name"], STUDY_LABEL: "true"}
        spec = {
            "objective": copy.deepcopy(study["spec"].get("objective")),
            "parameterAssignments": suggestion.parameter_assignments(),
            "metricsCollector": {"collector": {"kind": "Push"}},
        }
        return trial_resource(study, name, labels, spec, annotations)

    def _start(self, trial: Resource) -> Resource:
        new = copy.deepcopy(trial)
        set_condition(new, "Created", True, "TrialCreated", "Trial is created")
        set_condition(new, "Running", True, "TrialRunning", "Trial is handed to a worker")
        new.setdefault("status", {})["startTime"] = now_iso()
        return self.store.update_status(new)

    def _mark_end(self, study: Resource) -> None:
        new = copy.deepcopy(study)
        new["metadata"].setdefault("annotations", {})[END_ANNOTATION] = "true"
        self.store.update(new)

    # -- measurements and completion ----------------------------------------------------------
    def _objective_values(self, study: Resource, trial: Resource) -> list[float]:
        objective = str(study["spec"]["objective"]["objectiveMetricName"])
        return [log.value for log in _logs(read_measurements(trial)) if log.name == objective]

    def add_measurement(
        self, namespace: str, study_name: str, name: str, measurement: dict[str, Any]
    ) -> Resource:
        with self._lock(namespace, study_name):
            study = self.study(namespace, study_name)
            trial = self.trial(namespace, study_name, name)
            _require_active(trial, "add a measurement to")
            path = measurements_file(trial)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as handle:
                handle.write(json.dumps(measurement) + "\n")
            return self._observe(study, trial)

    def _observe(self, study: Resource, trial: Resource) -> Resource:
        observation = Observation.of(_logs(read_measurements(trial)))
        new = copy.deepcopy(trial)
        new.setdefault("status", {})["observation"] = observation.to_status(
            metric_names(study["spec"])
        )
        return self.store.update_status(new) if new != trial else trial

    def _finish(self, trial: Resource, cond: str, reason: str, message: str) -> Resource:
        new = copy.deepcopy(trial)
        set_condition(new, "Running", False, reason, message)
        set_condition(new, cond, True, reason, message)
        if cond == "EarlyStopped":  # as Katib: an early-stopped trial also reads Succeeded
            set_condition(new, "Succeeded", True, reason, message)
        new["status"]["completionTime"] = now_iso()
        return self.store.update_status(new)

    def complete(
        self,
        namespace: str,
        study_name: str,
        name: str,
        final: dict[str, Any] | None,
        infeasible_reason: str | None,
    ) -> Resource:
        with self._lock(namespace, study_name):
            study = self.study(namespace, study_name)
            trial = self.trial(namespace, study_name, name)
            if trial_state(trial).finished:
                return trial
            if final is not None:
                path = measurements_file(trial)
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a") as handle:
                    handle.write(json.dumps({**final, "final": True}) + "\n")
            trial = self._observe(study, trial)
            if infeasible_reason is not None:
                message = f"Trial has failed: infeasible: {infeasible_reason}"
                return self._finish(trial, "Failed", "TrialFailed", message)
            if not self._objective_values(study, trial):
                return self._finish(
                    trial,
                    "MetricsUnavailable",
                    "MetricsUnavailable",
                    "Metrics are not available: the objective was never measured",
                )
            return self._finish(trial, "Succeeded", "TrialSucceeded", "Trial has succeeded")

    def check_early_stopping(self, namespace: str, study_name: str, name: str) -> bool:
        with self._lock(namespace, study_name):
            study = self.study(namespace, study_name)
            trial = self.trial(namespace, study_name, name)
            state = trial_state(trial)
            if state is TrialState.EARLY_STOPPED:
                return True
            rule = MedianStop.from_spec(study["spec"])
            if rule is None or state.finished:
                return False
            completed = [
                self._objective_values(study, t)
                for t in self.trials(study)
                if trial_state(t) is TrialState.SUCCEEDED
            ]
            if not rule.should_stop(self._objective_values(study, trial), completed):
                return False
            self._finish(trial, "EarlyStopped", "TrialEarlyStopped", "Trial is early stopped")
            return True

    def stop(self, namespace: str, study_name: str, name: str) -> Resource:
        with self._lock(namespace, study_name):
            trial = self.trial(namespace, study_name, name)
            if trial_state(trial).finished:
                return trial
            return self._finish(trial, "EarlyStopped", "TrialEarlyStopped", "Trial was stopped")

    def optimal(self, namespace: str, name: str) -> list[Resource]:
        """The best trial (single objective), by the objective's metric strategy."""
        from flowyard.tuning.summary import summarize

        study = self.study(namespace, name)
        best = summarize(study["spec"], self.trials(study)).best
        return [best] if best is not None else []

    def forget(self, uid: str) -> None:
        self._engines.pop(uid, None)


def _finished(study: Resource) -> bool:
    for cond in (study.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Succeeded", "Failed") and cond.get("status") == "True":
            return True
    return False


def _require_active(trial: Resource, action: str) -> None:
    state = trial_state(trial)
    if state.finished:
        raise ConflictError(
            f'cannot {action} trial "{trial["metadata"]["name"]}": it is {state.value}'
        )


def trial_view(study: Resource, trial: Resource) -> dict[str, Any]:
    """A trial as the study API returns it: typed parameters, state, measurements."""
    md = trial["metadata"]
    space = SearchSpace.from_spec(study["spec"])
    assignments = {
        str(a["name"]): a["value"]
        for a in (trial.get("spec") or {}).get("parameterAssignments") or []
    }
    try:
        parameters: dict[str, Any] = dict(space.parse(assignments))
    except (ValueError, TypeError, KeyError):
        parameters = assignments
    measurements = read_measurements(trial)
    return {
        "name": md["name"],
        "study": study["metadata"]["name"],
        "clientId": (md.get("annotations") or {}).get(CLIENT_ANNOTATION, ""),
        "state": trial_state(trial).value,
        "parameters": parameters,
        "measurements": [m for m in measurements if not m.get("final")],
        "finalMeasurement": next((m for m in measurements if m.get("final")), None),
        "observation": (trial.get("status") or {}).get("observation"),
    }


def study_view(study: Resource) -> dict[str, Any]:
    md = study["metadata"]
    conditions = (study.get("status") or {}).get("conditions") or []
    done = [
        c["type"]
        for c in conditions
        if c.get("type") in ("Succeeded", "Failed") and c.get("status") == "True"
    ]
    return {
        "name": md["name"],
        "namespace": md["namespace"],
        "uid": md.get("uid"),
        "state": done[0] if done else "Active",
        "spec": study.get("spec"),
        "status": study.get("status") or {},
    }
