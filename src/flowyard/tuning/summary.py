"""An Experiment's status from its Trials: Katib's counters, trial lists and
``currentOptimalTrial``, and the end-of-experiment decision.

Counters and lists are omitted when zero or empty (Katib's ``omitempty``); ``trials`` counts
every Trial created. ``currentOptimalTrial`` is the trial with the best objective (extracted
with its metric strategy) among trials that have one (succeeded and early-stopped), the first
such trial on ties.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowyard.resources.meta import Resource
from flowyard.tuning.engine import TrialState
from flowyard.tuning.metrics import objective_from_status, strategies
from flowyard.tuning.records import trial_state

# (state, counter field, list field), in Katib's field names.
_FIELDS = (
    (TrialState.PENDING, "trialsPending", "pendingTrialList"),
    (TrialState.RUNNING, "trialsRunning", "runningTrialList"),
    (TrialState.SUCCEEDED, "trialsSucceeded", "succeededTrialList"),
    (TrialState.FAILED, "trialsFailed", "failedTrialList"),
    (TrialState.KILLED, "trialsKilled", "killedTrialList"),
    (TrialState.EARLY_STOPPED, "trialsEarlyStopped", "earlyStoppedTrialList"),
    (TrialState.METRICS_UNAVAILABLE, "trialMetricsUnavailable", "metricsUnavailableTrialList"),
)


@dataclass
class Summary:
    by_state: dict[TrialState, list[str]] = field(default_factory=dict)
    total: int = 0
    best: Resource | None = None
    best_value: float | None = None

    def count(self, *states: TrialState) -> int:
        return sum(len(self.by_state.get(s, [])) for s in states)

    @property
    def active(self) -> int:
        return self.count(TrialState.PENDING, TrialState.RUNNING)

    @property
    def completed(self) -> int:
        return self.total - self.active

    @property
    def failed(self) -> int:
        return self.count(TrialState.FAILED)


def summarize(spec: Mapping[str, Any], trials: Sequence[Resource]) -> Summary:
    objective = spec.get("objective") or {}
    name = str(objective.get("objectiveMetricName"))
    strategy = strategies(spec).get(name, "latest")
    maximize = objective.get("type") == "maximize"
    summary = Summary(total=len(trials))
    ordered = sorted(trials, key=lambda t: (t["metadata"].get("creationTimestamp") or "", _rv(t)))
    for trial in ordered:
        state = trial_state(trial)
        summary.by_state.setdefault(state, []).append(trial["metadata"]["name"])
        if state not in (TrialState.SUCCEEDED, TrialState.EARLY_STOPPED):
            continue
        value = objective_from_status(
            (trial.get("status") or {}).get("observation"), name, strategy
        )
        if value is None:
            continue
        if summary.best_value is None or (
            value > summary.best_value if maximize else value < summary.best_value
        ):
            summary.best, summary.best_value = trial, value
    return summary


def _rv(trial: Resource) -> int:
    try:
        return int(trial["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def apply_summary(status: dict[str, Any], summary: Summary) -> None:
    """Write the counters, lists and ``currentOptimalTrial`` into ``status``."""
    status["trials"] = summary.total
    for state, counter, listing in _FIELDS:
        names = summary.by_state.get(state, [])
        if names:
            status[counter], status[listing] = len(names), list(names)
        else:
            status.pop(counter, None)
            status.pop(listing, None)
    best = summary.best
    if best is None:
        status["currentOptimalTrial"] = {
            "bestTrialName": "",
            "parameterAssignments": None,
            "observation": {"metrics": None},
        }
    else:
        status["currentOptimalTrial"] = {
            "bestTrialName": best["metadata"]["name"],
            "parameterAssignments": list(
                (best.get("spec") or {}).get("parameterAssignments") or []
            ),
            "observation": (best.get("status") or {}).get("observation") or {"metrics": None},
        }


def goal_reached(spec: Mapping[str, Any], summary: Summary) -> bool:
    objective = spec.get("objective") or {}
    goal = objective.get("goal")
    if goal is None or summary.best_value is None:
        return False
    if objective.get("type") == "maximize":
        return summary.best_value >= float(goal)
    return summary.best_value <= float(goal)


def end_reason(
    spec: Mapping[str, Any], summary: Summary, suggestion_ended: bool
) -> tuple[str, str, str] | None:
    """``(condition, reason, message)`` when the experiment is over, in Katib's order."""
    if goal_reached(spec, summary):
        return (
            "Succeeded",
            "ExperimentGoalReached",
            "Experiment has succeeded because Objective goal has reached",
        )
    max_failed = spec.get("maxFailedTrialCount")
    if max_failed is not None and summary.failed > int(max_failed):
        return (
            "Failed",
            "ExperimentFailed",
            "Experiment has failed because max failed count has reached",
        )
    max_trials = spec.get("maxTrialCount")
    if max_trials is not None and summary.completed >= int(max_trials):
        return (
            "Succeeded",
            "ExperimentMaxTrialsReached",
            "Experiment has succeeded because max trial count has reached",
        )
    if suggestion_ended and summary.active == 0:
        return (
            "Succeeded",
            "ExperimentSuggestionEndReached",
            "Experiment has succeeded because suggestion service has reached the end",
        )
    return None
