"""Where a Run's pipeline comes from (inline IR or a PipelineVersion) and where its logs go."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowyard import config
from flowyard.errors import NotFoundError
from flowyard.pipelines.ir import PipelineIR, load_dict
from flowyard.pipelines.kinds import PIPELINE_VERSION, RUN
from flowyard.resources.meta import Resource
from flowyard.store.base import BaseStore


def run_log_dir(namespace: str, name: str) -> Path:
    """``FLOWYARD_HOME/logs/<ns>/runs/<name>``: where the log route looks for ``run/NAME``."""
    return config.logs_dir() / namespace / RUN.plural / name


def resolve_ir(store: BaseStore, run: Resource) -> tuple[PipelineIR, bool]:
    """The Run's IR and whether it came from a PipelineVersion.

    A version reference is resolved once: the IR is then kept in ``status.pipelineSpec`` (as
    KFP's Run reports it), so deleting the version later does not break a running Run.
    """
    spec = run.get("spec") or {}
    status = run.get("status") or {}
    if isinstance(spec.get("pipelineSpec"), dict):
        return _load(spec["pipelineSpec"], spec.get("platformSpec"), "spec.pipelineSpec"), False
    if isinstance(status.get("pipelineSpec"), dict):
        return _load(status["pipelineSpec"], None, "status.pipelineSpec"), True
    version = find_version(store, run["metadata"].get("namespace") or "default", spec)
    vspec = version["spec"]
    source = f"PipelineVersion {version['metadata']['name']}"
    return _load(vspec["pipelineSpec"], vspec.get("platformSpec"), source), True


def _load(pipeline_spec: dict[str, Any], platform: Any, source: str) -> PipelineIR:
    docs = [pipeline_spec] + ([platform] if isinstance(platform, dict) and platform else [])
    return load_dict(docs, source=source)


def find_version(store: BaseStore, namespace: str, spec: dict[str, Any]) -> Resource:
    """The referenced PipelineVersion; without ``pipelineVersionName``, the pipeline's newest."""
    ref = spec.get("pipelineVersionRef") or {}
    pipeline = str(ref.get("pipelineName") or "")
    version = ref.get("pipelineVersionName")
    if version:
        found = store.get(PIPELINE_VERSION, namespace, str(version))
        if found["spec"].get("pipelineName") != pipeline:
            raise NotFoundError(
                f"PipelineVersion {version!r} belongs to pipeline "
                f"{found['spec'].get('pipelineName')!r}, not {pipeline!r}"
            )
        return found
    items = [
        v
        for v in store.list(PIPELINE_VERSION, namespace).items
        if v["spec"].get("pipelineName") == pipeline
    ]
    if not items:
        raise NotFoundError(
            f"pipeline {pipeline!r} has no PipelineVersion in namespace {namespace!r}; upload one"
            " or set spec.pipelineVersionRef.pipelineVersionName"
        )
    return max(items, key=lambda v: (v["metadata"]["creationTimestamp"], v["metadata"]["name"]))
