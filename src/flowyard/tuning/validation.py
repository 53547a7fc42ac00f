"""Experiment semantic validation: Katib's validating webhook rules, plus the checks Katib leaves
to its suggestion services (which fail an experiment after it was accepted) moved to apply time:
algorithm settings, log distributions with ``min <= 0``, grid without steps, hyperband's
parallelism. Every problem is a :class:`FieldCause` naming its field.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from typing import Any

from flowyard.errors import FieldCause, InvalidError
from flowyard.resources.conditions import get_condition
from flowyard.resources.meta import Resource
from flowyard.tuning.metrics import metrics_format_causes
from flowyard.tuning.settings import algorithm_causes, early_stopping_causes
from flowyard.tuning.space import SearchSpace, parameter_causes
from flowyard.tuning.template import template_causes

_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MAX_NAME = 40  # Katib's limit: trial and suggestion names are derived from it
BUDGET_FIELDS = ("maxTrialCount", "maxFailedTrialCount", "parallelTrialCount")
RESUME_POLICIES = ("Never", "LongRunning", "FromVolume")
COLLECTORS = ("StdOut", "File", "TensorFlowEvent", "Push")
_UNSUPPORTED_COLLECTORS = ("PrometheusMetric", "Custom")


def validate_experiment(obj: Resource, old: Resource | None) -> list[FieldCause]:
    """Every semantic problem of an Experiment (``old`` is the stored object on update)."""
    spec = obj.get("spec") or {}
    causes = _name_causes(obj) + _budget_causes(spec)
    if old is not None:
        causes += update_causes(obj, old)
    objective = _objective_causes(spec)
    if objective:
        return causes + objective  # as Katib: nothing else is checked without an objective
    space = None
    params = _parameters_causes(spec)
    if not params:
        space = SearchSpace.from_spec(spec)
    causes += params + algorithm_causes(spec, space) + early_stopping_causes(spec)
    if spec.get("resumePolicy", "Never") not in RESUME_POLICIES:
        causes.append(
            FieldCause(
                "spec.resumePolicy",
                f"Unsupported value: "
                f"{spec.get('resumePolicy')!r}: supported values: " + ", ".join(RESUME_POLICIES),
                "FieldValueNotSupported",
            )
        )
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get("tuning.flowyard.io/study") == "true":
        # A study's trials are run by remote workers (flowyard.tuning.study): no template.
        return causes
    return causes + template_causes(spec) + _collector_causes(spec)


def _name_causes(obj: Resource) -> list[FieldCause]:
    name = str((obj.get("metadata") or {}).get("name") or "")
    if name and (not _NAME.match(name) or len(name) > _MAX_NAME):
        return [
            FieldCause(
                "metadata.name",
                f"Invalid value: {name!r}: an experiment name must "
                "start with a lower-case letter, contain only lower-case letters, "
                "digits and '-', end with a letter or digit, and be at most "
                f"{_MAX_NAME} characters",
            )
        ]
    return []


def _budget_causes(spec: Mapping[str, Any]) -> list[FieldCause]:
    causes = []
    max_trials, max_failed = spec.get("maxTrialCount"), spec.get("maxFailedTrialCount")
    parallel = spec.get("parallelTrialCount")
    if isinstance(max_failed, int) and max_failed < 0:
        causes.append(
            FieldCause("spec.maxFailedTrialCount", f"Invalid value: {max_failed}: must be >= 0")
        )
    if isinstance(max_trials, int) and max_trials <= 0:
        causes.append(FieldCause("spec.maxTrialCount", f"Invalid value: {max_trials}: must be > 0"))
    if isinstance(parallel, int) and parallel <= 0:
        causes.append(
            FieldCause("spec.parallelTrialCount", f"Invalid value: {parallel}: must be > 0")
        )
    if isinstance(max_trials, int):
        if isinstance(max_failed, int) and max_failed > max_trials:
            causes.append(
                FieldCause(
                    "spec.maxFailedTrialCount",
                    f"Invalid value: {max_failed}: must be <= spec.maxTrialCount ({max_trials})",
                )
            )
        if isinstance(parallel, int) and parallel > max_trials:
            causes.append(
                FieldCause(
                    "spec.parallelTrialCount",
                    f"Invalid value: {parallel}: must be <= spec.maxTrialCount ({max_trials})",
                )
            )
    return causes


def is_restartable(old: Resource) -> bool:
    """Katib's rule: a finished experiment may restart only if it succeeded by reaching
    maxTrialCount and its resumePolicy is LongRunning or FromVolume."""
    cond = get_condition(old, "Succeeded")
    return bool(
        cond
        and cond.get("status") == "True"
        and cond.get("reason") == "ExperimentMaxTrialsReached"
        and (old.get("spec") or {}).get("resumePolicy") in ("LongRunning", "FromVolume")
    )


def _is_completed(obj: Resource) -> bool:
    return any(
        (get_condition(obj, t) or {}).get("status") == "True" for t in ("Succeeded", "Failed")
    )


def update_causes(new: Resource, old: Resource) -> list[FieldCause]:
    """Only the budget fields may change; a finished experiment restarts only as Katib allows,
    and a new maxTrialCount must exceed the trials already created."""
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if new_spec == old_spec:
        return []
    causes = []
    if _is_completed(old) and not is_restartable(old):
        causes.append(
            FieldCause(
                "spec.resumePolicy",
                "Forbidden: a finished experiment can be "
                "restarted only if it succeeded by reaching maxTrialCount and "
                "spec.resumePolicy is LongRunning or FromVolume",
                "FieldValueForbidden",
            )
        )
    trials = int(((old.get("status") or {}).get("trials")) or 0)
    max_trials = new_spec.get("maxTrialCount")
    if isinstance(max_trials, int) and max_trials <= trials:
        causes.append(
            FieldCause(
                "spec.maxTrialCount",
                f"Invalid value: {max_trials}: must be greater than status.trials ({trials})",
            )
        )
    stripped_new, stripped_old = copy.deepcopy(dict(new_spec)), copy.deepcopy(dict(old_spec))
    for key in BUDGET_FIELDS:
        stripped_new.pop(key, None)
        stripped_old.pop(key, None)
    if stripped_new != stripped_old:
        changed = sorted(
            k
            for k in set(stripped_new) | set(stripped_old)
            if stripped_new.get(k) != stripped_old.get(k)
        )
        causes.append(
            FieldCause(
                "spec",
                "Forbidden: only spec.parallelTrialCount, "
                "spec.maxTrialCount and spec.maxFailedTrialCount are editable "
                f"(changed: {', '.join('spec.' + k for k in changed)})",
                "FieldValueForbidden",
            )
        )
    return causes


def _objective_causes(spec: Mapping[str, Any]) -> list[FieldCause]:
    objective = spec.get("objective")
    if not isinstance(objective, dict):
        return [FieldCause("spec.objective", "Required value", "FieldValueRequired")]
    causes = []
    if objective.get("type") not in ("minimize", "maximize"):
        causes.append(
            FieldCause(
                "spec.objective.type",
                f"Unsupported value: "
                f'{objective.get("type")!r}: supported values: "minimize", '
                '"maximize"',
                "FieldValueNotSupported",
            )
        )
    name = objective.get("objectiveMetricName")
    if not name:
        causes.append(
            FieldCause("spec.objective.objectiveMetricName", "Required value", "FieldValueRequired")
        )
    if name and name in (objective.get("additionalMetricNames") or []):
        causes.append(
            FieldCause(
                "spec.objective.additionalMetricNames",
                f"Invalid value: must not contain the objective metric {name!r}",
            )
        )
    for index, strategy in enumerate(objective.get("metricStrategies") or []):
        if (strategy or {}).get("value") not in ("min", "max", "latest"):
            causes.append(
                FieldCause(
                    f"spec.objective.metricStrategies[{index}].value",
                    f"Unsupported value: {(strategy or {}).get('value')!r}: "
                    'supported values: "min", "max", "latest"',
                    "FieldValueNotSupported",
                )
            )
    return causes


def _parameters_causes(spec: Mapping[str, Any]) -> list[FieldCause]:
    if spec.get("nasConfig") is not None:
        return [
            FieldCause(
                "spec.nasConfig",
                "Forbidden: neural architecture search (nasConfig, "
                "enas, darts) is not supported by flowyard; use spec.parameters",
                "FieldValueForbidden",
            )
        ]
    if not spec.get("parameters"):
        return [
            FieldCause(
                "spec.parameters", "Required value: at least one parameter", "FieldValueRequired"
            )
        ]
    return parameter_causes(spec["parameters"])


def _collector_causes(spec: Mapping[str, Any]) -> list[FieldCause]:
    collector_spec = spec.get("metricsCollectorSpec") or {}
    kind = (collector_spec.get("collector") or {}).get("kind", "StdOut")
    source = collector_spec.get("source") or {}
    base = "spec.metricsCollectorSpec"
    if kind in _UNSUPPORTED_COLLECTORS:
        return [
            FieldCause(
                f"{base}.collector.kind",
                f"Unsupported value: {kind!r}: flowyard supports " + ", ".join(COLLECTORS),
                "FieldValueNotSupported",
            )
        ]
    if kind not in COLLECTORS:
        return [
            FieldCause(
                f"{base}.collector.kind",
                f"Unsupported value: {kind!r}: supported values: " + ", ".join(COLLECTORS),
                "FieldValueNotSupported",
            )
        ]
    causes = metrics_format_causes((source.get("filter") or {}).get("metricsFormat"))
    fs = source.get("fileSystemPath") or {}
    if kind == "File":
        if fs.get("kind") != "File" or not os.path.isabs(str(fs.get("path") or "")):
            causes.append(
                FieldCause(
                    f"{base}.source.fileSystemPath.path",
                    "Required value: an "
                    "absolute path of the metrics file (fileSystemPath.kind: "
                    "File)",
                    "FieldValueRequired",
                )
            )
        if fs.get("format") not in ("TEXT", "JSON"):
            causes.append(
                FieldCause(
                    f"{base}.source.fileSystemPath.format",
                    f'Unsupported value: {fs.get("format")!r}: supported values: "TEXT", "JSON"',
                    "FieldValueNotSupported",
                )
            )
        if fs.get("format") == "JSON" and source.get("filter") is not None:
            causes.append(
                FieldCause(
                    f"{base}.source.filter",
                    "Forbidden: filter must be unset when the metrics file format is JSON",
                    "FieldValueForbidden",
                )
            )
    if kind == "TensorFlowEvent":
        if fs.get("kind") != "Directory" or not os.path.isabs(str(fs.get("path") or "")):
            causes.append(
                FieldCause(
                    f"{base}.source.fileSystemPath.path",
                    "Required value: an "
                    "absolute directory of TensorFlow event files "
                    "(fileSystemPath.kind: Directory)",
                    "FieldValueRequired",
                )
            )
        if fs.get("format"):
            causes.append(
                FieldCause(
                    f"{base}.source.fileSystemPath.format",
                    "Forbidden: must be empty for TensorFlowEvent",
                    "FieldValueForbidden",
                )
            )
    return causes


def check_experiment(obj: Resource, old: Resource | None = None) -> None:
    """Raise InvalidError listing every problem (for callers outside admission)."""
    causes = validate_experiment(obj, old)
    if causes:
        raise InvalidError(
            "Experiment is invalid: " + "; ".join(f"{c.field}: {c.message}" for c in causes),
            causes=causes,
        )
