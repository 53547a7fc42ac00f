"""The pipeline kinds, registered by :func:`register_kinds` (idempotent).

Group ``pipelines.kubeflow.org``, version ``v2beta1``, all namespaced, no short names (KFP
defines these as REST objects, not CRDs; the field names are the KFP v2beta1 REST API's, in
camelCase)::

    Pipeline         (plural pipelines)
      spec: {displayName, description}
    PipelineVersion  (plural pipelineversions)
      spec: {pipelineName,            # required: the Pipeline it belongs to (same namespace)
             displayName, description,
             pipelineSpec,            # required: the IR dict (PipelineSpec, schemaVersion 2.1.0)
             platformSpec,            # optional PlatformSpec dict ({platforms: {kubernetes: ..}})
             packageUrl}              # optional {pipelineUrl} where the package came from
    Run              (plural runs)
      spec: {displayName, description,
             pipelineSpec             # inline IR dict ...
             | pipelineVersionRef: {pipelineName, pipelineVersionName},   # ... xor a reference
             platformSpec,            # optional, with an inline pipelineSpec
             runtimeConfig: {parameters: {name: typed JSON value}, pipelineRoot: URI},
             experimentName, recurringRunName,
             enableCaching: true,     # default true; false = KFP's per-run cache opt-out
             terminate: false,        # set true to terminate (KFP POST /runs/{id}:terminate)
             retry: 0}                # increment to retry a FAILED/CANCELED run (KFP :retry)
      status: {state,                 # KFP V2beta1RuntimeState: PENDING RUNNING SUCCEEDED
                                      # SKIPPED FAILED CANCELING CANCELED PAUSED
               stateHistory: [{state, updateTime}],
               conditions: [Running | Succeeded | Failed, with reason/message],
               startTime, finishTime,         # RFC 3339
               error: {code, message},        # google.rpc.Status, when FAILED
               failedTasks: [task id, ...],
               observedRetry: int,            # the spec.retry value last acted on
               pipelineName,                  # the IR's pipelineInfo.name
               runDetails: {taskDetails: [{taskId, displayName, name, kind, parentTaskId, state,
                   reason, message, startTime, endTime, durationSeconds, attempt, cached,
                   image, inputs: {parameters, artifacts}, outputs: {parameters, artifacts},
                   logPath}]},
               outputs: {parameters, artifacts},   # the pipeline's outputs
               engine: <PipelineRun.snapshot()>}   # the engine state; the controller resumes it

KFP's ``Experiment`` kind is registered by the KFP REST API component (plural ``experiments``;
Katib's ``experiments.kubeflow.org`` also exists, so the CLI needs ``experiments.pipelines``).

``argoproj.io/v1alpha1 Workflow`` (plural ``workflows``, short name ``wf``): a KFP v1 / Argo
workflow, run by the Workflow controller; ``spec`` as Argo defines it (``spec.shutdown:
Terminate`` terminates), ``status`` as Argo writes it (``phase`` Pending/Running/Succeeded/
Failed/Error, ``startedAt``, ``finishedAt``, ``message``, ``nodes``).

Spec fields that define what runs (``pipelineSpec``, ``pipelineVersionRef``, ``runtimeConfig``,
``platformSpec``, ``enableCaching``) are immutable once a Run exists, as in KFP.
"""

from __future__ import annotations

import threading
from typing import Any

from flowyard.errors import FieldCause, FlowyardError
from flowyard.resources.meta import Resource
from flowyard.resources.registry import REGISTRY, KindInfo, KindRegistry, PrinterColumn

GROUP = "pipelines.kubeflow.org"
VERSION = "v2beta1"
API_VERSION = f"{GROUP}/{VERSION}"
ARGO_GROUP = "argoproj.io"
ARGO_VERSION = "v1alpha1"
ARGO_API_VERSION = f"{ARGO_GROUP}/{ARGO_VERSION}"

RUN_STATES = (
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "SKIPPED",
    "FAILED",
    "CANCELING",
    "CANCELED",
    "PAUSED",
)
FINAL_RUN_STATES = frozenset({"SUCCEEDED", "SKIPPED", "FAILED", "CANCELED"})

_AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")
_lock = threading.Lock()


def _kind(kind: str, plural: str, columns: tuple[PrinterColumn, ...]) -> KindInfo:
    return KindInfo(group=GROUP, version=VERSION, kind=kind, plural=plural, columns=columns)


PIPELINE = _kind(
    "Pipeline", "pipelines", (PrinterColumn("Display Name", ".spec.displayName"), _AGE)
)
PIPELINE_VERSION = _kind(
    "PipelineVersion",
    "pipelineversions",
    (PrinterColumn("Pipeline", ".spec.pipelineName"), _AGE),
)
RUN = _kind(
    "Run",
    "runs",
    (
        PrinterColumn("State", ".status.state"),
        PrinterColumn("Pipeline", ".status.pipelineName"),
        PrinterColumn("Duration", ".status.startTime", "duration"),
        _AGE,
        PrinterColumn("Error", ".status.error.message", priority=1),
    ),
)
WORKFLOW = KindInfo(
    group=ARGO_GROUP,
    version=ARGO_VERSION,
    kind="Workflow",
    plural="workflows",
    short_names=("wf",),
    columns=(
        PrinterColumn("Status", ".status.phase"),
        PrinterColumn("Duration", ".status.startedAt", "duration"),
        _AGE,
        PrinterColumn("Message", ".status.message", priority=1),
    ),
)
ALL_KINDS = (PIPELINE, PIPELINE_VERSION, RUN, WORKFLOW)

_RUN_IMMUTABLE = (
    "pipelineSpec",
    "pipelineVersionRef",
    "runtimeConfig",
    "platformSpec",
    "enableCaching",
)


def default_run(obj: Resource) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("enableCaching", True)
        spec.setdefault("runtimeConfig", {})
        if isinstance(spec["runtimeConfig"], dict):
            spec["runtimeConfig"].setdefault("parameters", {})


def validate_run(new: Resource, old: Resource | None) -> list[FieldCause]:
    """Exactly one of pipelineSpec/pipelineVersionRef; an inline IR must load and the
    parameters must type against it; immutable fields stay put."""
    spec = new.get("spec")
    if not isinstance(spec, dict):
        return [FieldCause("spec", "Required value: a Run needs a spec", "FieldValueRequired")]
    causes = _run_shape_causes(spec)
    if old is not None:
        old_spec = old.get("spec") or {}
        for field in _RUN_IMMUTABLE:
            if old_spec.get(field) != spec.get(field):
                causes.append(
                    FieldCause(
                        f"spec.{field}",
                        "Invalid value: field is immutable once the Run exists "
                        "(create a new Run instead)",
                        "FieldValueForbidden",
                    )
                )
        if int(spec.get("retry") or 0) < int(old_spec.get("retry") or 0):
            causes.append(FieldCause("spec.retry", "Invalid value: retry may only increase"))
    if causes or old is not None or "pipelineSpec" not in spec:
        return causes
    return _inline_ir_causes(spec)


def _run_shape_causes(spec: dict[str, Any]) -> list[FieldCause]:
    causes: list[FieldCause] = []
    inline, ref = spec.get("pipelineSpec"), spec.get("pipelineVersionRef")
    if (inline is None) == (ref is None):
        causes.append(
            FieldCause(
                "spec.pipelineSpec",
                "Required value: set exactly one of spec.pipelineSpec (the IR) and "
                "spec.pipelineVersionRef {pipelineName, pipelineVersionName}",
                "FieldValueRequired",
            )
        )
    if inline is not None and not isinstance(inline, dict):
        causes.append(FieldCause("spec.pipelineSpec", "Invalid value: must be an object"))
    if ref is not None and (not isinstance(ref, dict) or not ref.get("pipelineName")):
        causes.append(
            FieldCause(
                "spec.pipelineVersionRef.pipelineName",
                "Required value: the Pipeline's name",
                "FieldValueRequired",
            )
        )
    config = spec.get("runtimeConfig") or {}
    if not isinstance(config, dict) or not isinstance(config.get("parameters") or {}, dict):
        causes.append(
            FieldCause("spec.runtimeConfig.parameters", "Invalid value: must be an object")
        )
    for field in ("enableCaching", "terminate"):
        if field in spec and not isinstance(spec[field], bool):
            causes.append(FieldCause(f"spec.{field}", "Invalid value: must be true or false"))
    retry = spec.get("retry", 0)
    if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
        causes.append(FieldCause("spec.retry", "Invalid value: must be an integer >= 0"))
    return causes


def _inline_ir_causes(spec: dict[str, Any]) -> list[FieldCause]:
    from flowyard.pipelines.ir import load_dict
    from flowyard.pipelines.validate import resolve_run_parameters

    docs = [spec["pipelineSpec"]]
    if isinstance(spec.get("platformSpec"), dict) and spec["platformSpec"]:
        docs.append(spec["platformSpec"])
    try:
        ir = load_dict(docs, source="spec.pipelineSpec")
        resolve_run_parameters(ir, (spec.get("runtimeConfig") or {}).get("parameters") or {})
    except FlowyardError as exc:
        causes = list(getattr(exc, "causes", None) or [])
        if not causes:
            return [FieldCause("spec.pipelineSpec", f"Invalid value: {exc}")]
        return [
            FieldCause(_prefix(c.field), f"{c.message} ({exc})" if i == 0 else c.message, c.reason)
            for i, c in enumerate(causes)
        ]
    return []


def _prefix(field: str) -> str:
    if field.startswith("parameters."):
        return "spec.runtimeConfig." + field
    return "spec.pipelineSpec." + field if field else "spec.pipelineSpec"


def validate_pipeline_version(new: Resource, old: Resource | None) -> list[FieldCause]:
    spec = new.get("spec")
    if not isinstance(spec, dict):
        return [FieldCause("spec", "Required value", "FieldValueRequired")]
    causes: list[FieldCause] = []
    if not spec.get("pipelineName"):
        causes.append(
            FieldCause(
                "spec.pipelineName", "Required value: the Pipeline's name", "FieldValueRequired"
            )
        )
    if not isinstance(spec.get("pipelineSpec"), dict):
        causes.append(
            FieldCause(
                "spec.pipelineSpec", "Required value: the pipeline IR object", "FieldValueRequired"
            )
        )
    if causes:
        return causes
    if old is not None:
        for field in ("pipelineName", "pipelineSpec", "platformSpec"):
            if (old.get("spec") or {}).get(field) != spec.get(field):
                causes.append(FieldCause(f"spec.{field}", "Invalid value: field is immutable"))
        return causes
    from flowyard.pipelines.ir import load_dict

    docs = [spec["pipelineSpec"]] + ([spec["platformSpec"]] if spec.get("platformSpec") else [])
    try:
        load_dict(docs, source="spec.pipelineSpec")
    except FlowyardError as exc:
        causes.append(FieldCause("spec.pipelineSpec", f"Invalid value: {exc}"))
    return causes


def validate_workflow(new: Resource, old: Resource | None) -> list[FieldCause]:
    from flowyard.pipelines.argo.validate import workflow_causes

    return workflow_causes(new)


def register_kinds(registry: KindRegistry = REGISTRY) -> None:
    """Register the pipeline kinds and their admission hooks in ``registry``; idempotent."""
    with _lock:
        for info in ALL_KINDS:
            registry.ensure(info)
        registry.add_defaulter(API_VERSION, "Run", default_run)
        registry.add_validator(API_VERSION, "Run", validate_run)
        registry.add_validator(API_VERSION, "PipelineVersion", validate_pipeline_version)
        registry.add_validator(ARGO_API_VERSION, "Workflow", validate_workflow)
