"""The Suggestion controller: runs the suggestion engine and persists what it hands out.

``spec.requests`` is how many assignments the Experiment controller wants in total;
``status.suggestions`` is every assignment handed out so far, in order, each with its fixed
trial name and labels. That list is the study's persisted state: the engine's history is
rebuilt from it (joined with the Trials made from it), so after a restart the study continues
where it was, and an assignment is stored once before any Trial is made from it.

Engines are kept per experiment uid between calls (they only sync what changed); the cache is
an optimisation, not state. When the engine raises SuggestionEndReached the Suggestion gets
``Succeeded`` with reason ``SuggestionEndReached`` (the Experiment then ends with
``ExperimentSuggestionEndReached`` once no trial is active). An engine that returns fewer
than requested (hyperband rung, pbt generation) is asked again shortly.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from flowyard.controllers.base import Controller, ObjectKey, Result
from flowyard.errors import InvalidError, NotFoundError
from flowyard.resources.conditions import get_condition, is_true, set_condition
from flowyard.resources.meta import Resource, now_iso
from flowyard.tuning.algorithms import build_engine
from flowyard.tuning.controllers.common import (
    EXPERIMENT,
    SUGGESTION,
    experiment_trials,
    finish_running,
    owner_name,
    trial_name,
)
from flowyard.tuning.engine import SuggestionEndReached, SuggestionEngine, TrialRecord
from flowyard.tuning.records import record_from_trial

RETRY_SHORT_SECONDS = 0.5


def history(
    experiment: Resource, assigned: list[dict[str, Any]], trials: list[Resource]
) -> list[TrialRecord]:
    """One record per assignment handed out, in order; PENDING until its Trial exists."""
    by_name = {t["metadata"]["name"]: t for t in trials}
    records = []
    for item in assigned:
        name = str(item.get("name"))
        labels = dict(item.get("labels") or {})
        trial = by_name.get(name)
        if trial is None:
            values = {a["name"]: a["value"] for a in item.get("parameterAssignments") or []}
            records.append(TrialRecord(name, values, labels=labels))
            continue
        record = record_from_trial(trial, experiment["spec"])
        record.labels = {**record.labels, **labels}
        records.append(record)
    return records


class SuggestionController(Controller):
    kind = SUGGESTION
    workers = 1  # one engine call at a time per control plane; engines are not thread-safe

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._engines: dict[str, tuple[int, SuggestionEngine]] = {}
        self._lock = threading.Lock()

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            suggestion = self.store.get(SUGGESTION, key.namespace, key.name)
        except NotFoundError:
            return None
        if is_true(suggestion, "Succeeded") or is_true(suggestion, "Failed"):
            return None
        experiment = self._experiment(suggestion)
        if experiment is None:
            return None
        new = copy.deepcopy(suggestion)
        status = new.setdefault("status", {})
        if get_condition(new, "Created") is None:
            set_condition(new, "Created", True, "SuggestionCreated", "Suggestion is created")
            set_condition(new, "Running", True, "SuggestionRunning", "Suggestion is running")
            status["startTime"] = now_iso()
        assigned: list[dict[str, Any]] = list(status.get("suggestions") or [])
        wanted = int((suggestion.get("spec") or {}).get("requests") or 0)
        short = False
        if wanted > len(assigned):
            short = self._suggest(new, experiment, assigned, wanted)
        status["suggestions"] = assigned
        status["suggestionCount"] = len(assigned)
        if new.get("status") != suggestion.get("status"):
            status["lastReconcileTime"] = now_iso()
            self.store.update_status(new)
        return Result(requeue_after=RETRY_SHORT_SECONDS) if short else None

    def _suggest(
        self,
        suggestion: Resource,
        experiment: Resource,
        assigned: list[dict[str, Any]],
        wanted: int,
    ) -> bool:
        """Append up to ``wanted - len(assigned)`` assignments; True if fewer came back."""
        trials = experiment_trials(self.store, experiment)
        records = history(experiment, assigned, trials)
        try:
            engine = self._engine(experiment)
            out = engine.suggest(wanted - len(assigned), records)
        except SuggestionEndReached as exc:
            finish_running(suggestion, "Succeeded", "SuggestionEndReached", str(exc))
            suggestion["status"]["completionTime"] = now_iso()
            return False
        except InvalidError as exc:
            finish_running(suggestion, "Failed", "SuggestionFailed", str(exc))
            return False
        for item in out:
            name = item.name or trial_name(experiment, len(assigned))
            item.name = name
            engine.prepare(item)
            entry: dict[str, Any] = {
                "name": name,
                "parameterAssignments": item.parameter_assignments(),
            }
            if item.labels:
                entry["labels"] = dict(item.labels)
            assigned.append(entry)
        return len(assigned) < wanted

    def _engine(self, experiment: Resource) -> SuggestionEngine:
        md = experiment["metadata"]
        generation = int(md.get("generation") or 1)
        with self._lock:
            cached = self._engines.get(md["uid"])
            if cached is None or cached[0] != generation:
                engine = build_engine(experiment["spec"], uid=md["uid"], name=md["name"])
                cached = self._engines[md["uid"]] = (generation, engine)
            return cached[1]

    def _experiment(self, suggestion: Resource) -> Resource | None:
        name = owner_name(suggestion, "Experiment") or suggestion["metadata"]["name"]
        try:
            return self.store.get(EXPERIMENT, suggestion["metadata"]["namespace"], name)
        except NotFoundError:
            return None
