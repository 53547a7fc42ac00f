"""The Katib kinds: ``kubeflow.org/v1beta1`` Experiment, Trial and Suggestion.

Call :func:`register_kinds` (idempotent) to add them, with their schemas, printer columns,
defaulting and validation, to a registry. They are not registered when ``flowyard.resources`` is
imported: the process that serves tuning (the control plane) registers them at start-up.

No short names: Katib's CRDs define none, and KFP's ``Experiment`` (another group) would make
``experiment`` ambiguous anyway; ``experiments.kubeflow.org`` picks this one.
"""

from __future__ import annotations

from typing import Any

from flowyard.errors import FieldCause, InvalidError
from flowyard.resources.registry import REGISTRY, KindInfo, KindRegistry, PrinterColumn
from flowyard.tuning.defaults import default_experiment
from flowyard.tuning.validation import validate_experiment

GROUP = "kubeflow.org"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"

_TYPE = PrinterColumn("Type", ".status.conditions[-1:].type")
_STATUS = PrinterColumn("Status", ".status.conditions[-1:].status")
_AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")


def _experiment() -> KindInfo:
    return KindInfo(
        group=GROUP,
        version=VERSION,
        kind="Experiment",
        plural="experiments",
        schema_file="katib.Experiment.json",
        columns=(_TYPE, _STATUS, _AGE),
    )


def _trial() -> KindInfo:
    return KindInfo(
        group=GROUP,
        version=VERSION,
        kind="Trial",
        plural="trials",
        schema_file="katib.Trial.json",
        columns=(_TYPE, _STATUS, _AGE),
    )


def _suggestion() -> KindInfo:
    return KindInfo(
        group=GROUP,
        version=VERSION,
        kind="Suggestion",
        plural="suggestions",
        schema_file="katib.Suggestion.json",
        columns=(
            _TYPE,
            _STATUS,
            PrinterColumn("Requested", ".spec.requests"),
            PrinterColumn("Assigned", ".status.suggestionCount"),
            _AGE,
        ),
    )


def template_configmap_causes(
    new: dict[str, Any], old: dict[str, Any] | None, store: Any
) -> list[FieldCause]:
    """Katib's webhook check: a ConfigMap trial template must exist and hold a valid template
    when the Experiment is applied."""
    from flowyard.tuning.configmap import resolve_trial_spec

    if not ((new.get("spec") or {}).get("trialTemplate") or {}).get("configMap"):
        return []
    try:
        resolve_trial_spec(store, new["spec"])
    except InvalidError as exc:
        return [FieldCause("spec.trialTemplate.configMap", exc.message)]
    return []


def register_kinds(registry: KindRegistry = REGISTRY) -> tuple[KindInfo, KindInfo, KindInfo]:
    """Register Experiment, Trial and Suggestion (again: no-op) and return their KindInfos."""
    infos = []
    for make in (_experiment, _trial, _suggestion):
        infos.append(registry.ensure(make()))
    registry.add_defaulter(API_VERSION, "Experiment", default_experiment)
    registry.add_validator(API_VERSION, "Experiment", validate_experiment)
    registry.add_store_validator(API_VERSION, "Experiment", template_configmap_causes)
    return infos[0], infos[1], infos[2]
