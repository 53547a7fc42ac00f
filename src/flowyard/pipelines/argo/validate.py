"""Admission checks of an Argo ``Workflow``: the shape flowyard can run, and recognition of
workflows that the KFP v2 backend compiled (those wrap KFP's driver/launcher and are not meant
to be run by hand)."""

from __future__ import annotations

from typing import Any

from flowyard.errors import FieldCause

KFP_V2_MARKER = "pipelines.kubeflow.org/v2_component"


def is_kfp_v2_backend_workflow(obj: dict[str, Any]) -> bool:
    """True for a Workflow the KFP v2 backend compiled from IR (driver/launcher templates)."""
    spec = obj.get("spec") or {}
    pod_meta = spec.get("podMetadata") or {}
    if KFP_V2_MARKER in (pod_meta.get("labels") or {}):
        return True
    params = (spec.get("arguments") or {}).get("parameters") or []
    return any(str(p.get("name", "")) == "components-root" for p in params if isinstance(p, dict))


KFP_V2_MESSAGE = (
    "this Workflow was compiled by the KFP v2 backend from pipeline IR: its templates run KFP's "
    "driver and launcher against the cluster's ML Metadata service, so it cannot run outside "
    "that backend. Run the pipeline's IR instead: compile the pipeline with "
    "kfp.compiler.Compiler().compile(pipeline_func, 'pipeline.yaml') and "
    "`flowyard run pipeline.yaml` (or submit a pipelines.kubeflow.org/v2beta1 Run)"
)


def workflow_causes(obj: dict[str, Any]) -> list[FieldCause]:
    """Every problem that stops flowyard from running ``obj`` (empty when it can run)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [FieldCause("spec", "Required value: a Workflow needs a spec", "FieldValueRequired")]
    if is_kfp_v2_backend_workflow(obj):
        return [
            FieldCause("spec", f"Unsupported value: {KFP_V2_MESSAGE}", "FieldValueNotSupported")
        ]
    from flowyard.pipelines.argo.model import structure_causes

    return structure_causes(spec)
