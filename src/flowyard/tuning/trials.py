"""Making a Trial resource from an Experiment and one stored assignment (as Katib does)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from flowyard.resources.meta import Resource, owner_reference
from flowyard.tuning.kinds import API_VERSION
from flowyard.tuning.runobject import LABEL_EXPERIMENT
from flowyard.tuning.template import render_run_spec


def new_trial(
    experiment: Resource,
    assignment: Mapping[str, Any],
    run_template: Mapping[str, Any] | None = None,
) -> Resource:
    """The Trial for ``assignment`` (an entry of ``Suggestion.status.suggestions``): its
    parameter assignments, the rendered run spec, the objective and collector spec, and the
    assignment's labels; owned by the experiment. ``run_template`` is the trial spec when it comes
    from a ConfigMap (:func:`flowyard.tuning.configmap.resolve_trial_spec`)."""
    md = experiment["metadata"]
    spec = experiment["spec"]
    template = spec.get("trialTemplate") or {}
    name = str(assignment["name"])
    params = list(assignment.get("parameterAssignments") or [])
    values = {str(p["name"]): str(p["value"]) for p in params}
    labels = {**(assignment.get("labels") or {}), LABEL_EXPERIMENT: md["name"]}
    trial_spec: dict[str, Any] = {
        "objective": copy.deepcopy(spec.get("objective")),
        "parameterAssignments": params,
        "runSpec": render_run_spec(spec, name, md["namespace"], values, run_template),
        "metricsCollector": copy.deepcopy(spec.get("metricsCollectorSpec") or {}),
        "primaryContainerName": template.get("primaryContainerName"),
        "successCondition": template.get("successCondition"),
        "failureCondition": template.get("failureCondition"),
        "retainRun": bool(template.get("retain")),
    }
    if template.get("primaryPodLabels"):
        trial_spec["primaryPodLabels"] = dict(template["primaryPodLabels"])
    if assignment.get("labels"):
        trial_spec["labels"] = dict(assignment["labels"])
    return trial_resource(experiment, name, labels, trial_spec)


def trial_resource(
    owner: Resource,
    name: str,
    labels: dict[str, str],
    spec: dict[str, Any],
    annotations: dict[str, str] | None = None,
) -> Resource:
    """A Trial named ``name`` in ``owner``'s namespace, owned by it (an Experiment or study)."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": owner["metadata"]["namespace"],
        "labels": labels,
        "ownerReferences": [owner_reference(owner)],
    }
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": API_VERSION, "kind": "Trial", "metadata": metadata, "spec": spec}
