"""Turning a Job's pod template into executor ProcessSpecs ("pods" are host processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowyard import config
from flowyard.controllers.base import process_labels
from flowyard.executors.base import ProcessSpec
from flowyard.resources.kinds import JOB
from flowyard.resources.meta import Resource
from flowyard.resources.quantity import resources_from_kubernetes

LABEL_ATTEMPT = "flowyard.io/attempt"
LABEL_INDEX = "batch.kubernetes.io/job-completion-index"


def pod_name(job: Resource, attempt: int) -> str:
    md = job["metadata"]
    return f"{md['name']}-{str(md['uid'])[:5]}-{attempt}"


def process_name(job: Resource, attempt: int) -> str:
    return f"job.{job['metadata']['namespace']}.{pod_name(job, attempt)}"


def log_dir(namespace: str, name: str) -> Path:
    return config.logs_dir() / namespace / "jobs" / name


def pod_spec(job: Resource, attempt: int, index: int | None) -> ProcessSpec:
    """The ProcessSpec for one attempt ("pod") of ``job``; ``index`` for Indexed jobs."""
    md = job["metadata"]
    spec = job["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    name = pod_name(job, attempt)
    env = _container_env(container, job, name)
    if index is not None:
        env["JOB_COMPLETION_INDEX"] = str(index)
    env.setdefault("HOSTNAME", name)
    requests = (container.get("resources") or {}).get("requests")
    limits = (container.get("resources") or {}).get("limits")
    labels = process_labels(JOB, job)
    labels[LABEL_ATTEMPT] = str(attempt)
    if index is not None:
        labels[LABEL_INDEX] = str(index)
    deadline = pod.get("activeDeadlineSeconds")
    return ProcessSpec(
        name=process_name(job, attempt),
        argv=[*(container.get("command") or []), *(container.get("args") or [])],
        env=env,
        cwd=container.get("workingDir") or None,
        resources=resources_from_kubernetes(requests, limits),
        log_path=str(log_dir(md["namespace"], md["name"]) / f"{name}.log"),
        labels=labels,
        deadline_seconds=float(deadline) if deadline else None,
    )


def _container_env(container: dict[str, Any], job: Resource, pod: str) -> dict[str, str]:
    md = job["metadata"]
    fields = {
        "metadata.name": pod,
        "metadata.namespace": md["namespace"],
        "metadata.uid": str(md.get("uid", "")),
    }
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "valueFrom" in item:
            ref = (item["valueFrom"].get("fieldRef") or {}).get("fieldPath", "")
            env[item["name"]] = fields.get(ref, "")
        else:
            env[item["name"]] = str(item.get("value", ""))
    return env
