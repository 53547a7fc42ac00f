"""Trial templates kept in a ConfigMap (``spec.trialTemplate.configMap``), resolved as Katib does.

Katib reads the ConfigMap ``configMapName`` in ``configMapNamespace`` and takes the trial spec
from ``data[templatePath]``, a YAML (or JSON) document. As Katib's webhook does, the API refuses
an Experiment whose ConfigMap is missing, lacks the key, does not hold an object there or holds
a template whose placeholders do not match ``trialParameters`` (a store validator registered in
:mod:`flowyard.tuning.kinds`). The Experiment controller resolves it again for every trial; if
the ConfigMap went away meanwhile the experiment ends ``ExperimentFailed`` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from flowyard.errors import FieldCause, InvalidError, NotFoundError
from flowyard.resources.kinds import CONFIGMAP
from flowyard.store.base import BaseStore
from flowyard.tuning.template import parameter_causes

_PATH = "spec.trialTemplate.configMap"


def resolve_trial_spec(store: BaseStore, experiment_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The trial spec that ``experiment_spec.trialTemplate.configMap`` points at.

    Raises InvalidError (field ``spec.trialTemplate.configMap``) when the ConfigMap does not
    exist, has no key ``templatePath``, does not hold a YAML object there, or holds a template
    that does not match ``trialParameters`` (Katib's webhook checks)."""
    template = experiment_spec.get("trialTemplate") or {}
    ref = template.get("configMap") or {}
    name, namespace = str(ref.get("configMapName")), str(ref.get("configMapNamespace"))
    path = ref.get("templatePath")
    where = f'ConfigMap "{namespace}/{name}"'
    try:
        configmap = store.get(CONFIGMAP, namespace, name)
    except NotFoundError:
        raise _invalid(f"{where} not found: create it before the Experiment") from None
    data = configmap.get("data") or {}
    if path not in data:
        keys = ", ".join(sorted(data)) or "none"
        raise _invalid(f"templatePath {path!r} not found in {where} (its keys: {keys})")
    try:
        trial_spec = yaml.safe_load(data[path])
    except yaml.YAMLError as exc:
        raise _invalid(f"{where} key {path!r} is not valid YAML: {exc}") from None
    if not isinstance(trial_spec, dict):
        raise _invalid(f"{where} key {path!r} must hold a trial spec (a YAML object)")
    causes = parameter_causes(experiment_spec, {**template, "trialSpec": trial_spec})
    if causes:
        listed = "; ".join(f"{c.field}: {c.message}" for c in causes)
        raise InvalidError(f"the trial template in {where} is invalid: {listed}", causes=causes)
    return trial_spec


def _invalid(message: str) -> InvalidError:
    return InvalidError(message, causes=[FieldCause(_PATH, f"Invalid value: {message}")])
