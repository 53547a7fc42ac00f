"""KFP's ``Experiment`` as a resource: ``pipelines.kubeflow.org/v2beta1 Experiment``.

Shape (KFP v2beta1 field names, camelCase)::

    spec: {displayName, description}
    metadata.labels["pipelines.kubeflow.org/storage-state"]: ARCHIVED when archived

Runs name their experiment in ``spec.experimentName``. Katib's ``experiments.kubeflow.org``
shares the plural, so on the CLI this one is ``experiments.pipelines``. Register with
:func:`register_experiment_kind` (idempotent).
"""

from __future__ import annotations

import threading

from flowyard.errors import FieldCause, FlowyardError
from flowyard.pipelines.kinds import API_VERSION, GROUP, VERSION
from flowyard.resources.meta import Resource
from flowyard.resources.registry import REGISTRY, KindInfo, KindRegistry, PrinterColumn

EXPERIMENT = KindInfo(
    group=GROUP,
    version=VERSION,
    kind="Experiment",
    plural="experiments",
    columns=(
        PrinterColumn("Display Name", ".spec.displayName"),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)
_lock = threading.Lock()


def validate_experiment(new: Resource, old: Resource | None) -> list[FieldCause]:
    spec = new.get("spec")
    if not isinstance(spec, dict):
        return [FieldCause("spec", "Required value: spec.displayName", "FieldValueRequired")]
    if not isinstance(spec.get("displayName"), str) or not spec["displayName"].strip():
        return [
            FieldCause(
                "spec.displayName",
                "Required value: the experiment's display name",
                "FieldValueRequired",
            )
        ]
    return []


def register_experiment_kind(registry: KindRegistry = REGISTRY) -> KindInfo:
    """Add the KFP Experiment kind and its validation to ``registry``; idempotent."""
    with _lock:
        try:
            info = registry.get(API_VERSION, "Experiment")
        except FlowyardError:
            info = registry.register(EXPERIMENT)
        registry.add_validator(API_VERSION, "Experiment", validate_experiment)
        return info
