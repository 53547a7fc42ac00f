"""Trial templates: substitution into ``spec.trialTemplate.trialSpec`` and its admission checks.

Substitution is Katib's: each ``spec.trialTemplate.trialParameters`` entry names a placeholder
``${trialParameters.<name>}`` and a ``reference`` — either a search-space parameter (replaced by
the trial's assignment, in Katib's string form) or trial metadata ``${trialSpec.Name}``,
``${trialSpec.Namespace}``, ``${trialSpec.Kind}``, ``${trialSpec.APIVersion}``,
``${trialSpec.Labels[key]}``, ``${trialSpec.Annotations[key]}`` (the labels and annotations of
the template's own metadata). flowyard also replaces metadata placeholders written directly in
the template (``"--name=${trialSpec.Name}"``), which Katib leaves as literal text.

Placeholders are replaced inside strings (values and keys), structurally rather than in the
serialized JSON as Katib does, so a value with quotes cannot break the object. The result is the
run spec of the trial's resource (any kind: ``batch/v1 Job``, ``PyTorchJob``, ``TrainJob``, ...)
with ``metadata.name`` and ``metadata.namespace`` set to the trial's.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from flowyard.errors import FieldCause, InvalidError

PARAM_PLACEHOLDER = re.compile(r"\$\{trialParameters\.(.+?)\}")
META_PLACEHOLDER = re.compile(r"\$\{trialSpec\.(.+?)\}")
_INDEXED = re.compile(r"^(.+)\[(.+)\]$")
META_KEYS = ("Name", "Namespace", "Kind", "APIVersion", "Annotations", "Labels")
_PATH = "spec.trialTemplate"


def is_meta_reference(reference: str) -> bool:
    """Whether a trialParameters ``reference`` is trial metadata (``${trialSpec.Name}``...)."""
    match = META_PLACEHOLDER.fullmatch(reference)
    if not match:
        return False
    key = match.group(1)
    indexed = _INDEXED.match(key)
    if indexed:
        return indexed.group(1) in ("Labels", "Annotations")
    return key in META_KEYS


def _meta_value(key: str, trial_spec: Mapping[str, Any], name: str, namespace: str) -> str:
    metadata = trial_spec.get("metadata") or {}
    simple = {
        "Name": name,
        "Namespace": namespace,
        "Kind": str(trial_spec.get("kind") or ""),
        "APIVersion": str(trial_spec.get("apiVersion") or ""),
    }
    if key in simple:
        return simple[key]
    indexed = _INDEXED.match(key)
    if indexed and indexed.group(1) in ("Labels", "Annotations"):
        table = metadata.get(indexed.group(1).lower()) or {}
        if indexed.group(2) in table:
            return str(table[indexed.group(2)])
        raise InvalidError(
            f"trial template refers to ${{trialSpec.{key}}}, but the template's "
            f"metadata.{indexed.group(1).lower()} has no key "
            f"{indexed.group(2)!r}",
            causes=[FieldCause(f"{_PATH}.trialSpec.metadata", "Required value")],
        )
    raise InvalidError(
        f"unknown trial metadata reference ${{trialSpec.{key}}}; known: " + ", ".join(META_KEYS),
        causes=[FieldCause(_PATH, "Invalid value")],
    )


def placeholder_values(
    template: Mapping[str, Any],
    trial_spec: Mapping[str, Any],
    name: str,
    namespace: str,
    assignments: Mapping[str, str],
) -> dict[str, str]:
    """``{trialParameter name: value}`` for one trial (InvalidError on a missing assignment)."""
    values: dict[str, str] = {}
    for param in template.get("trialParameters") or []:
        reference = str(param.get("reference") or "")
        meta = META_PLACEHOLDER.fullmatch(reference)
        if meta:
            values[str(param["name"])] = _meta_value(meta.group(1), trial_spec, name, namespace)
        elif reference in assignments:
            values[str(param["name"])] = str(assignments[reference])
        else:
            raise InvalidError(
                f"trial parameter {param.get('name')!r} refers to {reference!r}, "
                f"which has no assignment (assigned: {sorted(assignments)})"
            )
    return values


def _substitute(node: Any, replace: Any) -> Any:
    if isinstance(node, str):
        return replace(node)
    if isinstance(node, list):
        return [_substitute(item, replace) for item in node]
    if isinstance(node, dict):
        return {replace(k): _substitute(v, replace) for k, v in node.items()}
    return node


def render_run_spec(
    experiment_spec: Mapping[str, Any],
    trial_name: str,
    namespace: str,
    assignments: Mapping[str, str],
    trial_spec: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The trial's resource: the trial template with every placeholder replaced.

    ``assignments`` are Katib strings (:attr:`Suggestion.assignments`). ``trial_spec`` is the
    template when it comes from a ConfigMap (resolved by the caller); default
    ``spec.trialTemplate.trialSpec``."""
    template = experiment_spec.get("trialTemplate") or {}
    source = trial_spec if trial_spec is not None else template.get("trialSpec")
    if not isinstance(source, Mapping):
        raise InvalidError(
            "spec.trialTemplate.trialSpec is not set",
            causes=[FieldCause(f"{_PATH}.trialSpec", "Required value", "FieldValueRequired")],
        )
    values = placeholder_values(template, source, trial_name, namespace, assignments)

    def replace(text: str) -> str:
        text = PARAM_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
        return META_PLACEHOLDER.sub(
            lambda m: _meta_value(m.group(1), source, trial_name, namespace), text
        )

    rendered: dict[str, Any] = _substitute(copy.deepcopy(dict(source)), replace)
    metadata = rendered.setdefault("metadata", {})
    metadata["name"] = trial_name
    metadata["namespace"] = namespace
    return rendered


def template_causes(spec: Mapping[str, Any]) -> list[FieldCause]:
    """Katib's admission checks of ``spec.trialTemplate``."""
    template = spec.get("trialTemplate")
    if not isinstance(template, dict):
        return [FieldCause(_PATH, "Required value", "FieldValueRequired")]
    causes: list[FieldCause] = []
    if not template.get("primaryContainerName"):
        causes.append(
            FieldCause(
                f"{_PATH}.primaryContainerName",
                "Required value: the name of the container that runs the training code",
                "FieldValueRequired",
            )
        )
    if not template.get("successCondition") or not template.get("failureCondition"):
        causes.append(
            FieldCause(
                _PATH,
                "Required value: successCondition and "
                "failureCondition must be specified for this kind",
                "FieldValueRequired",
            )
        )
    if template.get("trialParameters") is None:
        return [
            *causes,
            FieldCause(f"{_PATH}.trialParameters", "Required value", "FieldValueRequired"),
        ]
    has_spec, has_cm = template.get("trialSpec") is not None, template.get("configMap") is not None
    if has_spec == has_cm:
        return [
            *causes,
            FieldCause(
                _PATH, "Invalid value: exactly one of trialSpec and configMap must be specified"
            ),
        ]
    if has_cm:
        cm = template["configMap"] or {}
        missing = [
            k for k in ("configMapName", "configMapNamespace", "templatePath") if not cm.get(k)
        ]
        if missing:
            causes.append(
                FieldCause(
                    f"{_PATH}.configMap",
                    "Required value: " + ", ".join(missing),
                    "FieldValueRequired",
                )
            )
        return causes
    return causes + parameter_causes(spec, template)


def parameter_causes(spec: Mapping[str, Any], template: Mapping[str, Any]) -> list[FieldCause]:
    """Katib's checks of ``template.trialParameters`` against ``template.trialSpec`` (also run
    on a template resolved from a ConfigMap)."""
    causes: list[FieldCause] = []
    text = json.dumps(template["trialSpec"])
    names, refs = set(), set()
    params = {str(p.get("name")) for p in spec.get("parameters") or [] if isinstance(p, dict)}
    for index, param in enumerate(template["trialParameters"] or []):
        path = f"{_PATH}.trialParameters[{index}]"
        name, ref = str(param.get("name") or ""), str(param.get("reference") or "")
        if not name or not ref or "{" in name or "}" in name:
            causes.append(
                FieldCause(
                    path,
                    "Invalid value: name and reference must be set and "
                    "name must not contain '{' or '}'",
                )
            )
            continue
        if name in names or ref in refs:
            which, value = ("name", name) if name in names else ("reference", ref)
            causes.append(
                FieldCause(f"{path}.{which}", f"Duplicate value: {value!r}", "FieldValueDuplicate")
            )
            continue
        names.add(name)
        refs.add(ref)
        if params and not is_meta_reference(ref) and ref not in params:
            causes.append(
                FieldCause(
                    f"{path}.reference",
                    f"Invalid value: {ref!r}: not a "
                    f"parameter in spec.parameters ({', '.join(sorted(params))})"
                    " nor trial metadata such as ${trialSpec.Name}",
                )
            )
        placeholder = "${trialParameters." + name + "}"
        if placeholder not in text:
            causes.append(
                FieldCause(
                    f"{path}.name",
                    f"Invalid value: {name!r}: {placeholder} "
                    "does not appear in spec.trialTemplate.trialSpec",
                )
            )
        text = text.replace(placeholder, "x")
    leftover = sorted(set(PARAM_PLACEHOLDER.findall(text)))
    if leftover:
        causes.append(
            FieldCause(
                f"{_PATH}.trialSpec",
                "Invalid value: placeholders without a "
                "trialParameters entry: "
                + ", ".join("${trialParameters." + n + "}" for n in leftover),
            )
        )
    return causes + _run_spec_causes(template["trialSpec"])


def _run_spec_causes(trial_spec: object) -> list[FieldCause]:
    if not isinstance(trial_spec, dict):
        return [FieldCause(f"{_PATH}.trialSpec", "Invalid value: must be an object")]
    causes = []
    metadata = trial_spec.get("metadata") or {}
    if metadata.get("name") or metadata.get("namespace"):
        causes.append(
            FieldCause(
                f"{_PATH}.trialSpec.metadata",
                "Forbidden: metadata.name and "
                "metadata.namespace must be omitted (each trial sets its own)",
                "FieldValueForbidden",
            )
        )
    if not trial_spec.get("apiVersion") or not trial_spec.get("kind"):
        causes.append(
            FieldCause(
                f"{_PATH}.trialSpec",
                "Required value: apiVersion and kind must be specified",
                "FieldValueRequired",
            )
        )
    for match in META_PLACEHOLDER.finditer(json.dumps(trial_spec)):
        if not is_meta_reference(match.group(0)):
            causes.append(
                FieldCause(
                    f"{_PATH}.trialSpec",
                    f"Invalid value: {match.group(0)}: "
                    "known trial metadata: " + ", ".join(META_KEYS),
                )
            )
    return causes
