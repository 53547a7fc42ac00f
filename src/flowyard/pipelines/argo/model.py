"""The parts of an Argo Workflow spec flowyard reads, and their structural checks."""

from __future__ import annotations

from typing import Any

from flowyard.errors import FieldCause

TEMPLATE_TYPES = ("container", "script", "dag", "steps", "suspend", "resource", "data", "http")
SUPPORTED_TYPES = ("container", "script", "dag", "steps")


def template_type(template: dict[str, Any]) -> str | None:
    for kind in TEMPLATE_TYPES:
        if kind in template:
            return kind
    return None


def structure_causes(spec: dict[str, Any]) -> list[FieldCause]:
    """Missing entrypoint, unknown template references, unsupported template types."""
    causes: list[FieldCause] = []
    templates = spec.get("templates")
    if not isinstance(templates, list) or not templates:
        return [FieldCause("spec.templates", "Required value: at least one template")]
    names: dict[str, dict[str, Any]] = {}
    for i, tpl in enumerate(templates):
        if not isinstance(tpl, dict) or not tpl.get("name"):
            causes.append(FieldCause(f"spec.templates[{i}].name", "Required value"))
            continue
        names[str(tpl["name"])] = tpl
        kind = template_type(tpl)
        if kind is None:
            causes.append(
                FieldCause(
                    f"spec.templates[{i}]",
                    f"template {tpl['name']!r} has none of {', '.join(SUPPORTED_TYPES)}",
                )
            )
        elif kind not in SUPPORTED_TYPES:
            causes.append(
                FieldCause(
                    f"spec.templates[{i}].{kind}",
                    f"Unsupported value: {kind} templates are not run by flowyard (supported: "
                    f"{', '.join(SUPPORTED_TYPES)})",
                    "FieldValueNotSupported",
                )
            )
    for field in ("entrypoint", "onExit"):
        ref = spec.get(field)
        if field == "entrypoint" and not ref:
            causes.append(FieldCause("spec.entrypoint", "Required value", "FieldValueRequired"))
        elif ref and ref not in names:
            causes.append(
                FieldCause(f"spec.{field}", f"template {ref!r} is not defined in spec.templates")
            )
    for i, tpl in enumerate(templates):
        if isinstance(tpl, dict):
            causes.extend(_ref_causes(i, tpl, names))
    return causes


def _ref_causes(i: int, tpl: dict[str, Any], names: dict[str, Any]) -> list[FieldCause]:
    causes = []
    for where, task in _children(tpl):
        ref = task.get("template")
        if not ref and "templateRef" in task:
            causes.append(
                FieldCause(
                    f"spec.templates[{i}].{where}.templateRef",
                    "Unsupported value: WorkflowTemplate references are not supported; inline"
                    " the template",
                    "FieldValueNotSupported",
                )
            )
        elif ref not in names:
            causes.append(
                FieldCause(
                    f"spec.templates[{i}].{where}.template",
                    f"template {ref!r} is not defined in spec.templates",
                )
            )
    return causes


def _children(tpl: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for j, task in enumerate((tpl.get("dag") or {}).get("tasks") or []):
        out.append((f"dag.tasks[{j}]", task))
    for j, group in enumerate(tpl.get("steps") or []):
        for k, step in enumerate(group or []):
            out.append((f"steps[{j}][{k}]", step))
    return out
