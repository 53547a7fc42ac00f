"""Resolving a task's inputs, loop items and DAG outputs from run state (the KFP driver's job).

Inputs come from the enclosing DAG instance (``componentInputParameter``/``Artifact``), from
sibling tasks (``taskOutputParameter``/``Artifact``, ``taskFinalStatus``) or from constants
(``runtimeValue.constant``, with run/task placeholders resolved). A
``parameterExpressionSelector`` (``parseJson(string_value)["a"]``) then picks a field. An input
whose producer did not succeed (possible with ``ignore_upstream_failure``) is left out, so the
component's default applies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from flowyard.pipelines import state as st
from flowyard.pipelines import values
from flowyard.pipelines.placeholders import RuntimeContext, resolve_runtime, resolve_self_references

_SELECTOR_KEY = re.compile(r"""\[\s*(?:"([^"]*)"|'([^']*)'|(-?\d+))\s*\]""")

Lookup = Callable[[str], dict[str, Any]]


class ResolveError(Exception):
    """An input cannot be resolved; the message names the task and input."""


def apply_selector(value: Any, selector: str) -> Any:
    """Apply KFP's ``parseJson(string_value)["key"][0]...`` selector to ``value``."""
    expr = selector.strip()
    for prefix in ("parseJson(string_value)", "struct_value", "list_value", "string_value"):
        if expr.startswith(prefix):
            expr = expr[len(prefix) :]
            break
    else:
        raise ResolveError(f"unsupported parameterExpressionSelector {selector!r}")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ResolveError(f"selector {selector!r} needs JSON, got {value!r}") from exc
    pos = 0
    while pos < len(expr):
        match = _SELECTOR_KEY.match(expr, pos)
        if not match:
            raise ResolveError(f"unsupported parameterExpressionSelector {selector!r}")
        key: Any = match.group(1) if match.group(1) is not None else match.group(2)
        if key is None:
            key = int(match.group(3))
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError) as exc:
            raise ResolveError(f"selector {selector!r} found no {key!r} in {value!r}") from exc
        pos = match.end()
    return value


def _final_status(producer: dict[str, Any], run_name: str) -> dict[str, Any]:
    status: dict[str, Any] = {
        "state": st.final_status_state(producer),
        "pipelineJobResourceName": run_name,
        "pipelineTaskName": producer["name"],
        "error": {},
    }
    if status["state"] != "SUCCEEDED":
        status["error"] = {"code": 1, "message": producer.get("message") or producer["state"]}
    return status


def resolve_inputs(
    task_name: str,
    task: dict[str, Any],
    component: dict[str, Any],
    parent: dict[str, Any],
    sibling: Lookup,
    ctx: RuntimeContext,
    run_name: str,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """``(parameters, artifacts)`` of ``task`` in the DAG instance ``parent``."""
    inputs = task.get("inputs") or {}
    param_defs = (component.get("inputDefinitions") or {}).get("parameters") or {}
    params: dict[str, Any] = {}
    for name, spec in (inputs.get("parameters") or {}).items():
        found, value = _parameter(spec, parent, sibling, ctx, run_name)
        if not found:
            continue
        if spec.get("parameterExpressionSelector"):
            value = apply_selector(value, spec["parameterExpressionSelector"])
        ptype = (param_defs.get(name) or {}).get("parameterType")
        if ptype and ptype not in (values.TASK_FINAL_STATUS, values.TASK_CONFIG):
            try:
                value = values.coerce(value, ptype)
            except values.ParameterTypeError as exc:
                raise ResolveError(
                    f"input parameter {name!r} of task {task_name!r}: {exc}"
                ) from exc
        params[name] = value
    params = resolve_self_references(params)
    artifacts: dict[str, list[dict[str, Any]]] = {}
    for name, spec in (inputs.get("artifacts") or {}).items():
        arts = _artifact(spec, parent, sibling)
        if arts is not None:
            artifacts[name] = arts
    return params, artifacts


def _parameter(
    spec: dict[str, Any],
    parent: dict[str, Any],
    sibling: Lookup,
    ctx: RuntimeContext,
    run_name: str,
) -> tuple[bool, Any]:
    if "componentInputParameter" in spec:
        given = parent["inputs"]["parameters"]
        key = spec["componentInputParameter"]
        return (key in given and given[key] is not None), given.get(key)
    if "taskOutputParameter" in spec:
        ref = spec["taskOutputParameter"]
        producer = sibling(ref["producerTask"])
        outs = producer["outputs"]["parameters"]
        key = ref["outputParameterKey"]
        return (st.is_ok(producer) and key in outs), outs.get(key)
    if "runtimeValue" in spec:
        value = (spec["runtimeValue"] or {}).get("constant")
        if isinstance(value, str):
            value = resolve_runtime(value, ctx)
        return True, value
    if "taskFinalStatus" in spec:
        producer = sibling(spec["taskFinalStatus"]["producerTask"])
        return True, _final_status(producer, run_name)
    return False, None


def _artifact(
    spec: dict[str, Any], parent: dict[str, Any], sibling: Lookup
) -> list[dict[str, Any]] | None:
    if "componentInputArtifact" in spec:
        arts = parent["inputs"]["artifacts"].get(spec["componentInputArtifact"])
        return list(arts) if arts else None
    if "taskOutputArtifact" in spec:
        ref = spec["taskOutputArtifact"]
        producer = sibling(ref["producerTask"])
        arts = producer["outputs"]["artifacts"].get(ref["outputArtifactKey"])
        return list(arts) if arts and st.is_ok(producer) else None
    return None


def missing_required(
    task_name: str, component: dict[str, Any], params: dict[str, Any], artifacts: dict[str, Any]
) -> str | None:
    """A message naming the first required input of an executor task that has no value."""
    definitions = component.get("inputDefinitions") or {}
    for name, spec in (definitions.get("parameters") or {}).items():
        if name not in params and not spec.get("isOptional") and "defaultValue" not in spec:
            return f"required input parameter {name!r} of task {task_name!r} has no value"
    for name, spec in (definitions.get("artifacts") or {}).items():
        if name not in artifacts and not spec.get("isOptional"):
            return f"required input artifact {name!r} of task {task_name!r} has no value"
    return None


def loop_items(
    task: dict[str, Any], params: dict[str, Any], artifacts: dict[str, list[dict[str, Any]]]
) -> tuple[str, list[Any], bool]:
    """``(item input name, items, is_artifact)`` of a ParallelFor task."""
    if "parameterIterator" in task:
        it = task["parameterIterator"]
        items_spec = it.get("items") or {}
        if "raw" in items_spec:
            raw = items_spec["raw"]
            items = json.loads(raw) if isinstance(raw, str) else raw
        else:
            key = items_spec.get("inputParameter", "")
            if key not in params:
                raise ResolveError(f"loop items {key!r} have no value")
            items = params[key]
            if isinstance(items, str):
                items = json.loads(items)
        if not isinstance(items, list):
            raise ResolveError(f"loop items must be a list, got {type(items).__name__}")
        return str(it["itemInput"]), items, False
    it = task["artifactIterator"]
    key = (it.get("items") or {}).get("inputArtifact", "")
    return str(it["itemInput"]), list(artifacts.get(key) or []), True


def dag_outputs(
    component: dict[str, Any], child: Lookup
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Outputs of a finished DAG instance from its ``dag.outputs`` selectors (OneOf included)."""
    outputs = (component.get("dag") or {}).get("outputs") or {}
    params: dict[str, Any] = {}
    for name, spec in (outputs.get("parameters") or {}).items():
        if "valueFromParameter" in spec:
            selectors = [spec["valueFromParameter"]]
        else:
            selectors = (spec.get("valueFromOneof") or {}).get("parameterSelectors") or []
        for sel in selectors:
            node = child(sel["producerSubtask"])
            outs = node["outputs"]["parameters"]
            if st.is_ok(node) and sel["outputParameterKey"] in outs:
                params[name] = outs[sel["outputParameterKey"]]
                break
    artifacts: dict[str, list[dict[str, Any]]] = {}
    for name, spec in (outputs.get("artifacts") or {}).items():
        for sel in spec.get("artifactSelectors") or []:
            node = child(sel["producerSubtask"])
            arts = node["outputs"]["artifacts"].get(sel["outputArtifactKey"])
            if st.is_ok(node) and arts:
                artifacts[name] = list(arts)
                break
    return params, artifacts
