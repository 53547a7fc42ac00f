"""Turning the pipeline source of a KFP Run / RecurringRun body into flowyard spec fields."""

from __future__ import annotations

from typing import Any

from flowyard.api.auth import User
from flowyard.errors import BadRequestError, NotFoundError
from flowyard.kfp_api.context import KfpContext
from flowyard.kfp_api.experiment_routes import DEFAULT_EXPERIMENT, ensure_experiment
from flowyard.kfp_api.packages import split_docs
from flowyard.pipelines.experiments import EXPERIMENT
from flowyard.pipelines.kinds import PIPELINE, PIPELINE_VERSION
from flowyard.resources.meta import DEFAULT_NAMESPACE


def pipeline_source(ctx: KfpContext, body: dict[str, Any]) -> dict[str, Any]:
    """``pipelineSpec``/``platformSpec`` or ``pipelineVersionRef`` from a KFP body with
    ``pipeline_spec`` or ``pipeline_version_reference`` (or the deprecated
    ``pipeline_version_id``)."""
    spec = body.get("pipeline_spec")
    ref = body.get("pipeline_version_reference") or {}
    version_id = ref.get("pipeline_version_id") or body.get("pipeline_version_id")
    if spec and (ref or version_id):
        raise BadRequestError("set either pipeline_spec or pipeline_version_reference, not both")
    if isinstance(spec, dict) and spec:
        if "pipeline_spec" in spec and "root" not in spec:
            docs = [spec["pipeline_spec"], spec.get("platform_spec") or {}]
        else:
            docs = [spec]
        ir, platform = split_docs([d for d in docs if d], "pipeline_spec")
        out: dict[str, Any] = {"pipelineSpec": ir}
        if platform:
            out["platformSpec"] = platform
        return out
    if version_id:
        version = ctx.row(PIPELINE_VERSION, str(version_id))
        if (
            ref.get("pipeline_id")
            and ctx.row(PIPELINE, ref["pipeline_id"])["rname"] != version["pipeline"]
        ):
            raise NotFoundError(
                f"pipeline version {version_id!r} does not belong to pipeline "
                f"{ref['pipeline_id']!r}"
            )
        return {
            "pipelineVersionRef": {
                "pipelineName": version["pipeline"],
                "pipelineVersionName": version["rname"],
            }
        }
    if ref.get("pipeline_id"):
        pipeline = ctx.row(PIPELINE, str(ref["pipeline_id"]))
        return {"pipelineVersionRef": {"pipelineName": pipeline["rname"]}}
    raise BadRequestError(
        "a run needs pipeline_spec or pipeline_version_reference {pipeline_id, pipeline_version_id}"
    )


def pipeline_namespace(ctx: KfpContext, source: dict[str, Any], namespace: str) -> None:
    """A referenced pipeline must live in the run's namespace."""
    ref = source.get("pipelineVersionRef")
    if ref and ctx.index.by_name(PIPELINE, namespace, ref["pipelineName"]) is None:
        raise BadRequestError(
            f"the pipeline is not in namespace {namespace!r}, the namespace of the run's experiment"
        )


def experiment_of(ctx: KfpContext, user: User, body: dict[str, Any]) -> tuple[str, str]:
    """(namespace, experiment resource name) for a body's ``experiment_id``; without one, the
    ``Default`` experiment of the body's namespace (created when missing), as KFP does."""
    exp_id = body.get("experiment_id")
    if exp_id:
        row = ctx.row(EXPERIMENT, str(exp_id))
        if row["storage_state"] == "ARCHIVED":
            raise BadRequestError(
                f"experiment {exp_id!r} is archived: unarchive it before adding runs"
            )
        return row["ns"], row["rname"]
    ns = body.get("namespace") or DEFAULT_NAMESPACE
    exp = ensure_experiment(ctx, user, ns, DEFAULT_EXPERIMENT)
    return ns, exp["metadata"]["name"]


def runtime_config(body: dict[str, Any]) -> dict[str, Any]:
    config = body.get("runtime_config") or {}
    if not isinstance(config, dict):
        raise BadRequestError("runtime_config must be an object")
    params = config.get("parameters") or {}
    if not isinstance(params, dict):
        raise BadRequestError("runtime_config.parameters must be an object")
    out: dict[str, Any] = {"parameters": params}
    if config.get("pipeline_root"):
        out["pipelineRoot"] = config["pipeline_root"]
    return out
