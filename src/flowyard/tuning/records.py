"""Building the engines' history from stored Trial resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flowyard.resources.conditions import is_true
from flowyard.resources.meta import Resource
from flowyard.tuning.engine import TrialRecord, TrialState
from flowyard.tuning.metrics import objective_from_status, strategies

# Checked in this order: a trial that was early-stopped also reads Succeeded in Katib.
_STATE_ORDER = (
    ("EarlyStopped", TrialState.EARLY_STOPPED),
    ("MetricsUnavailable", TrialState.METRICS_UNAVAILABLE),
    ("Succeeded", TrialState.SUCCEEDED),
    ("Failed", TrialState.FAILED),
    ("Killed", TrialState.KILLED),
    ("Running", TrialState.RUNNING),
)


def trial_state(trial: Resource) -> TrialState:
    """The state a Trial's conditions describe (PENDING before it runs)."""
    for cond_type, state in _STATE_ORDER:
        if is_true(trial, cond_type):
            return state
    return TrialState.PENDING


def record_from_trial(
    trial: Resource, experiment_spec: Mapping[str, Any], intermediate: Sequence[float] = ()
) -> TrialRecord:
    """A :class:`TrialRecord` from a Trial resource: its assignments, state, labels and the
    objective from ``status.observation`` extracted with the experiment's metric strategy.
    ``intermediate`` is the objective's value log, when the caller has it."""
    spec = trial.get("spec") or {}
    objective_name = str((experiment_spec.get("objective") or {}).get("objectiveMetricName"))
    strategy = strategies(experiment_spec).get(objective_name, "latest")
    observation = (trial.get("status") or {}).get("observation")
    return TrialRecord(
        name=str((trial.get("metadata") or {}).get("name") or ""),
        assignments={
            str(a.get("name")): a.get("value") for a in spec.get("parameterAssignments") or []
        },
        state=trial_state(trial),
        objective=objective_from_status(observation, objective_name, strategy),
        labels=dict((trial.get("metadata") or {}).get("labels") or {}),
        intermediate=tuple(intermediate),
    )
