"""Mapping between flowyard resources and KFP v2beta1 REST objects (snake_case JSON).

Every KFP id is the resource's uid. References between objects are resource names in flowyard
(``spec.experimentName``, ``spec.pipelineVersionRef.pipelineName``) and ids in KFP; the
:class:`Ids` callback turns a (kind, namespace, name) into the id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowyard.kfp_api.names import created_epoch, parse_epoch, rfc3339, storage_state
from flowyard.pipelines.experiments import EXPERIMENT
from flowyard.pipelines.kinds import PIPELINE, PIPELINE_VERSION
from flowyard.pipelines.recurring import ANNOTATION_SCHEDULED_AT, RECURRING_RUN
from flowyard.resources.meta import Resource
from flowyard.resources.registry import KindInfo

Ids = Callable[[KindInfo, str, str], str | None]
"""(kind, namespace, resource name) -> KFP id, or None when no such object exists."""


def _md(obj: Resource) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Resource) -> dict[str, Any]:
    return obj.get("spec") or {}


def _display(obj: Resource) -> str:
    return str(_spec(obj).get("displayName") or _md(obj).get("name") or "")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# -- summaries for the index --------------------------------------------------------------


def summarize_common(obj: Resource) -> dict[str, Any]:
    return {
        "display_name": _display(obj),
        "created_at": created_epoch(obj),
        "description": _spec(obj).get("description") or "",
        "storage_state": storage_state(obj),
    }


def summarize_version(obj: Resource) -> dict[str, Any]:
    return {**summarize_common(obj), "pipeline": _spec(obj).get("pipelineName") or ""}


def summarize_run(obj: Resource) -> dict[str, Any]:
    spec, status = _spec(obj), obj.get("status") or {}
    return {
        **summarize_common(obj),
        "state": status.get("state") or "PENDING",
        "finished_at": parse_epoch(status.get("finishTime")),
        "experiment": spec.get("experimentName") or "",
        "recurring_run": spec.get("recurringRunName") or "",
    }


def summarize_recurring(obj: Resource) -> dict[str, Any]:
    spec = _spec(obj)
    return {
        **summarize_common(obj),
        "mode": spec.get("mode") or "ENABLE",
        "experiment": spec.get("experimentName") or "",
    }


# -- resources -> KFP -----------------------------------------------------------------------


def pipeline_to_kfp(obj: Resource) -> dict[str, Any]:
    md = _md(obj)
    return {
        "pipeline_id": md.get("uid"),
        "display_name": _display(obj),
        "name": md.get("name"),
        "description": _spec(obj).get("description") or "",
        "created_at": rfc3339(created_epoch(obj)),
        "namespace": md.get("namespace"),
        "tags": _spec(obj).get("tags") or {},
    }


def full_spec(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The pipeline spec as KFP returns it: the IR, or ``{pipeline_spec, platform_spec}``
    when there is a platform spec."""
    ir = spec.get("pipelineSpec")
    if ir is None:
        return None
    if spec.get("platformSpec"):
        return {"pipeline_spec": ir, "platform_spec": spec["platformSpec"]}
    return dict(ir)


def version_to_kfp(obj: Resource, ids: Ids) -> dict[str, Any]:
    md, spec = _md(obj), _spec(obj)
    ns = md.get("namespace") or ""
    out = {
        "pipeline_id": ids(PIPELINE, ns, spec.get("pipelineName") or ""),
        "pipeline_version_id": md.get("uid"),
        "display_name": _display(obj),
        "name": md.get("name"),
        "description": spec.get("description") or "",
        "created_at": rfc3339(created_epoch(obj)),
        "pipeline_spec": full_spec(spec),
        "tags": spec.get("tags") or {},
    }
    if (spec.get("packageUrl") or {}).get("pipelineUrl"):
        out["package_url"] = {"pipeline_url": spec["packageUrl"]["pipelineUrl"]}
    return out


def experiment_to_kfp(obj: Resource, last_run_created_at: float | None) -> dict[str, Any]:
    md = _md(obj)
    return _drop_none(
        {
            "experiment_id": md.get("uid"),
            "display_name": _display(obj),
            "description": _spec(obj).get("description") or "",
            "created_at": rfc3339(created_epoch(obj)),
            "namespace": md.get("namespace"),
            "storage_state": storage_state(obj),
            "last_run_created_at": rfc3339(last_run_created_at),
        }
    )


def _source_to_kfp(spec: dict[str, Any], ns: str, ids: Ids) -> dict[str, Any]:
    """pipeline_spec / pipeline_version_reference, runtime_config and experiment_id."""
    out: dict[str, Any] = {}
    ref = spec.get("pipelineVersionRef")
    if isinstance(ref, dict):
        version = ref.get("pipelineVersionName")
        out["pipeline_version_reference"] = _drop_none(
            {
                "pipeline_id": ids(PIPELINE, ns, ref.get("pipelineName") or ""),
                "pipeline_version_id": ids(PIPELINE_VERSION, ns, version) if version else None,
            }
        )
    else:
        out["pipeline_spec"] = full_spec(spec)
    config = spec.get("runtimeConfig") or {}
    out["runtime_config"] = _drop_none(
        {"parameters": config.get("parameters") or {}, "pipeline_root": config.get("pipelineRoot")}
    )
    if spec.get("experimentName"):
        out["experiment_id"] = ids(EXPERIMENT, ns, spec["experimentName"])
    if spec.get("serviceAccount"):
        out["service_account"] = spec["serviceAccount"]
    return out


def _io(values: Any) -> dict[str, Any]:
    """A task's inputs/outputs as KFP's ``map<string, ArtifactList>``: artifacts as
    ``{artifact_ids, artifacts}``; parameters (which KFP keeps in MLMD) as
    ``{parameter_value}``."""
    if not isinstance(values, dict):
        return {}
    out: dict[str, Any] = {}
    for name, value in (values.get("parameters") or {}).items():
        out[name] = {"parameter_value": value}
    for name, arts in (values.get("artifacts") or {}).items():
        items = arts if isinstance(arts, list) else [arts]
        out[name] = {
            "artifact_ids": [str(a.get("uri") or a.get("name") or "") for a in items if a],
            "artifacts": items,
        }
    return out


def task_to_kfp(task: dict[str, Any], run_id: str) -> dict[str, Any]:
    out = {
        "run_id": run_id,
        "task_id": task.get("taskId"),
        "display_name": task.get("displayName") or task.get("name"),
        "create_time": task.get("createTime"),
        "start_time": task.get("startTime"),
        "end_time": task.get("endTime"),
        "state": task.get("state") or "PENDING",
        "error": task.get("error"),
        "inputs": _io(task.get("inputs")),
        "outputs": _io(task.get("outputs")),
        "parent_task_id": task.get("parentTaskId"),
        "child_tasks": [{"task_id": c.get("taskId")} for c in task.get("childTasks") or []],
        "state_history": [],
    }
    return _drop_none(out)


def run_to_kfp(obj: Resource, ids: Ids) -> dict[str, Any]:
    md, spec, status = _md(obj), _spec(obj), obj.get("status") or {}
    ns, uid = md.get("namespace") or "", str(md.get("uid") or "")
    created = rfc3339(created_epoch(obj))
    annotations = md.get("annotations") or {}
    out: dict[str, Any] = {
        "run_id": uid,
        "display_name": _display(obj),
        "description": spec.get("description") or "",
        "storage_state": storage_state(obj),
        **_source_to_kfp(spec, ns, ids),
        "created_at": created,
        "scheduled_at": annotations.get(ANNOTATION_SCHEDULED_AT) or created,
        "finished_at": status.get("finishTime"),
        "state": status.get("state") or "PENDING",
        "error": status.get("error"),
        "state_history": [
            {"update_time": h.get("updateTime"), "state": h.get("state")}
            for h in status.get("stateHistory") or []
        ],
        "run_details": {
            "task_details": [
                task_to_kfp(t, uid)
                for t in (status.get("runDetails") or {}).get("taskDetails") or []
            ]
        },
    }
    if spec.get("recurringRunName"):
        out["recurring_run_id"] = ids(RECURRING_RUN, ns, spec["recurringRunName"])
    return _drop_none(out)


def recurring_to_kfp(obj: Resource, ids: Ids) -> dict[str, Any]:
    md, spec, status = _md(obj), _spec(obj), obj.get("status") or {}
    ns = md.get("namespace") or ""
    trigger = spec.get("trigger") or {}
    kfp_trigger: dict[str, Any] = {}
    if "cronSchedule" in trigger:
        c = trigger["cronSchedule"] or {}
        kfp_trigger["cron_schedule"] = _drop_none(
            {"cron": c.get("cron"), "start_time": c.get("startTime"), "end_time": c.get("endTime")}
        )
    elif "periodicSchedule" in trigger:
        p = trigger["periodicSchedule"] or {}
        kfp_trigger["periodic_schedule"] = _drop_none(
            {
                "interval_second": str(p.get("intervalSecond")),
                "start_time": p.get("startTime"),
                "end_time": p.get("endTime"),
            }
        )
    mode = spec.get("mode") or "ENABLE"
    return _drop_none(
        {
            "recurring_run_id": md.get("uid"),
            "display_name": _display(obj),
            "description": spec.get("description") or "",
            **_source_to_kfp(spec, ns, ids),
            "max_concurrency": str(spec.get("maxConcurrency") or 1),
            "trigger": kfp_trigger,
            "mode": mode,
            "created_at": rfc3339(created_epoch(obj)),
            "updated_at": status.get("lastFireTime") or rfc3339(created_epoch(obj)),
            # The mode is the truth (KFP answers from its DB at once); the scheduler's
            # status.status follows it a moment later.
            "status": "ENABLED" if mode == "ENABLE" else "DISABLED",
            "no_catchup": bool(spec.get("noCatchup")),
            "namespace": ns,
        }
    )
