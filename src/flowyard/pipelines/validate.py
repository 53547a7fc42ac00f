"""Structural validation of a pipeline IR and of the runtime parameters of a run.

:func:`validate_structure` checks what the engine relies on, and reports every problem at once as
an :class:`~flowyard.errors.InvalidError` whose causes name the field (``root.dag.tasks.train``):

* each task's ``componentRef`` names a defined component, each executor component's
  ``executorLabel`` names an executor in ``deploymentSpec``;
* ``dependentTasks`` and ``producerTask`` references name sibling tasks;
* no cycle among the tasks of a DAG, and no component that contains itself;
* every required input of an executor component is wired by the task that uses it.

:func:`resolve_run_parameters` types the user's parameters against the root component's
``inputDefinitions`` (defaults filled in, unknown names, missing required values and wrong types
reported by name).
"""

from __future__ import annotations

from typing import Any

from flowyard.errors import FieldCause, InvalidError
from flowyard.pipelines import values
from flowyard.pipelines.ir import ROOT, PipelineIR


def validate_structure(ir: PipelineIR) -> None:
    """Raise InvalidError listing every structural problem of ``ir``."""
    causes: list[FieldCause] = []
    for label, comp in ir.components.items():
        where = f"components.{label}"
        if "dag" not in comp and "executorLabel" not in comp:
            causes.append(FieldCause(where, "component has neither 'dag' nor 'executorLabel'"))
        label_ref = comp.get("executorLabel")
        if label_ref and label_ref not in ir.executors:
            causes.append(
                FieldCause(
                    f"{where}.executorLabel",
                    f"executor {label_ref!r} is not defined in deploymentSpec.executors",
                )
            )
    if "dag" not in ir.root:
        causes.append(FieldCause("root.dag", "the root component must be a DAG"))
    for comp_name in [ROOT, *ir.components]:
        if "dag" in ir.component(comp_name):
            causes.extend(_check_dag(ir, comp_name))
    causes.extend(_check_component_recursion(ir))
    if causes:
        summary = "; ".join(f"{c.field}: {c.message}" for c in causes[:5])
        more = f" (and {len(causes) - 5} more)" if len(causes) > 5 else ""
        raise InvalidError(f"invalid pipeline {ir.name!r}: {summary}{more}", causes=causes)


def _dag_path(comp_name: str) -> str:
    return "root.dag.tasks" if comp_name == ROOT else f"components.{comp_name}.dag.tasks"


def _check_dag(ir: PipelineIR, comp_name: str) -> list[FieldCause]:
    causes: list[FieldCause] = []
    tasks = ir.dag_tasks(comp_name)
    base = _dag_path(comp_name)
    for task_name, task in tasks.items():
        where = f"{base}.{task_name}"
        ref = (task.get("componentRef") or {}).get("name")
        if not ref:
            causes.append(FieldCause(f"{where}.componentRef", "missing componentRef.name"))
        elif ref not in ir.components:
            causes.append(
                FieldCause(
                    f"{where}.componentRef",
                    f"task {task_name!r} refers to unknown component {ref!r}",
                    reason="FieldValueNotFound",
                )
            )
        for dep in upstream_tasks(task):
            if dep not in tasks:
                causes.append(
                    FieldCause(
                        f"{where}.dependentTasks",
                        f"task {task_name!r} depends on unknown task {dep!r}",
                        reason="FieldValueNotFound",
                    )
                )
        if ref in ir.components:
            causes.extend(_check_required_inputs(ir, where, task_name, task, ir.components[ref]))
    cycle = _find_cycle({n: [d for d in upstream_tasks(t) if d in tasks] for n, t in tasks.items()})
    if cycle:
        causes.append(FieldCause(base, f"dependency cycle between tasks: {' -> '.join(cycle)}"))
    return causes


def upstream_tasks(task: dict[str, Any]) -> list[str]:
    """Sibling tasks ``task`` waits for: ``dependentTasks`` plus the producers of its inputs."""
    deps = list(task.get("dependentTasks") or [])
    inputs = task.get("inputs") or {}
    for spec in (inputs.get("parameters") or {}).values():
        for key in ("taskOutputParameter", "taskFinalStatus"):
            producer = (spec.get(key) or {}).get("producerTask")
            if producer:
                deps.append(producer)
    for spec in (inputs.get("artifacts") or {}).values():
        producer = (spec.get("taskOutputArtifact") or {}).get("producerTask")
        if producer:
            deps.append(producer)
    return list(dict.fromkeys(deps))


def _check_required_inputs(
    ir: PipelineIR, where: str, task_name: str, task: dict[str, Any], comp: dict[str, Any]
) -> list[FieldCause]:
    if "executorLabel" not in comp:
        return []
    causes: list[FieldCause] = []
    inputs = task.get("inputs") or {}
    given_params = inputs.get("parameters") or {}
    given_artifacts = inputs.get("artifacts") or {}
    definitions = comp.get("inputDefinitions") or {}
    for pname, spec in (definitions.get("parameters") or {}).items():
        if spec.get("isOptional") or "defaultValue" in spec or pname in given_params:
            continue
        causes.append(
            FieldCause(
                f"{where}.inputs.parameters.{pname}",
                f"task {task_name!r} does not set required input parameter {pname!r}",
                reason="FieldValueRequired",
            )
        )
    for aname, spec in (definitions.get("artifacts") or {}).items():
        if spec.get("isOptional") or aname in given_artifacts:
            continue
        causes.append(
            FieldCause(
                f"{where}.inputs.artifacts.{aname}",
                f"task {task_name!r} does not set required input artifact {aname!r}",
                reason="FieldValueRequired",
            )
        )
    return causes


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle in ``graph`` (node -> upstream nodes) as a list of nodes, or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for nxt in graph.get(node, []):
            if color.get(nxt) == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if color.get(nxt) == white:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for node in sorted(graph):
        if color[node] == white:
            found = visit(node)
            if found:
                return found
    return None


def _check_component_recursion(ir: PipelineIR) -> list[FieldCause]:
    graph: dict[str, list[str]] = {}
    for comp_name in [ROOT, *ir.components]:
        comp = ir.component(comp_name)
        refs = [
            (t.get("componentRef") or {}).get("name", "")
            for t in ((comp.get("dag") or {}).get("tasks") or {}).values()
        ]
        graph[comp_name] = [r for r in refs if r in ir.components]
    cycle = _find_cycle(graph)
    if cycle:
        return [FieldCause("components", f"component contains itself: {' -> '.join(cycle)}")]
    return []


def resolve_run_parameters(ir: PipelineIR, given: dict[str, Any]) -> dict[str, Any]:
    """Type ``given`` against the pipeline's inputs; fill defaults; raise InvalidError by name.

    String values for non-string parameters (from a command line) are parsed as the declared
    type. Optional parameters without a default are left out when not given.
    """
    definitions = (ir.root.get("inputDefinitions") or {}).get("parameters") or {}
    artifact_defs = (ir.root.get("inputDefinitions") or {}).get("artifacts") or {}
    causes: list[FieldCause] = []
    resolved: dict[str, Any] = {}
    for name in given:
        if name not in definitions:
            declared = ", ".join(sorted(definitions)) or "none"
            causes.append(
                FieldCause(
                    f"parameters.{name}",
                    f"pipeline {ir.name!r} has no parameter {name!r} (declared: {declared})",
                    reason="FieldValueNotSupported",
                )
            )
    for name, spec in definitions.items():
        ptype = spec.get("parameterType", "")
        if name in given and given[name] is not None:
            raw = given[name]
            try:
                if isinstance(raw, str) and ptype != values.STRING:
                    resolved[name] = values.from_cli_text(raw, ptype)
                else:
                    resolved[name] = values.coerce(raw, ptype)
            except values.ParameterTypeError as exc:
                causes.append(
                    FieldCause(
                        f"parameters.{name}",
                        f"parameter {name!r} must be {values.type_name(ptype)}: {exc}",
                    )
                )
        elif "defaultValue" in spec:
            resolved[name] = values.default_of(spec)
        elif not spec.get("isOptional"):
            causes.append(
                FieldCause(
                    f"parameters.{name}",
                    f"missing required parameter {name!r} ({values.type_name(ptype)})",
                    reason="FieldValueRequired",
                )
            )
    for name, spec in artifact_defs.items():
        if not spec.get("isOptional"):
            causes.append(
                FieldCause(
                    f"artifacts.{name}",
                    f"pipeline input artifact {name!r} cannot be given to a run; make it optional",
                    reason="FieldValueNotSupported",
                )
            )
    if causes:
        raise InvalidError(
            "; ".join(c.message for c in causes), causes=causes, details={"name": ir.name}
        )
    return resolved
