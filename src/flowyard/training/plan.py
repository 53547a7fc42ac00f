"""From a v1 job to the gang of ProcessSpecs that runs it (one process per replica).

A :class:`Member` is one replica of one attempt: its replica type, index, ``restartPolicy`` and
the :class:`~flowyard.executors.base.ProcessSpec`. Process names are stable per (job uid,
attempt, replica) so a re-launch after a control-plane crash is idempotent, and every attempt
gets new names and a fresh :class:`~flowyard.training.network.GangNetwork`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowyard import config
from flowyard.executors.base import ProcessSpec
from flowyard.resources.meta import Resource
from flowyard.resources.quantity import resources_from_kubernetes
from flowyard.training import mpi
from flowyard.training.commands import host_argv
from flowyard.training.env import framework_env
from flowyard.training.frameworks import (
    framework_of,
    main_container,
    ordered_replicas,
    replica_count,
)
from flowyard.training.network import GangNetwork, plan_network

LABEL_JOB_NAME = "training.kubeflow.org/job-name"
LABEL_REPLICA_TYPE = "training.kubeflow.org/replica-type"
LABEL_REPLICA_INDEX = "training.kubeflow.org/replica-index"
LABEL_JOB_ROLE = "training.kubeflow.org/job-role"
LABEL_ATTEMPT = "flowyard.io/attempt"


@dataclass(frozen=True)
class Member:
    rtype: str
    index: int
    restart_policy: str
    spec: ProcessSpec


def job_dir(job: Resource) -> Path:
    """Per-job working directory: ``FLOWYARD_HOME/training/<namespace>/<kind>/<name>``."""
    md = job["metadata"]
    kind = str(job["kind"]).lower()
    return (
        config.home() / "training" / str(md.get("namespace") or "default") / kind / str(md["name"])
    )


def log_path(job: Resource, rtype: str, index: int) -> str:
    """One log per replica (as one pod per replica upstream), named like the upstream pod
    (``<name>-<type>-<index>``), under ``FLOWYARD_HOME/logs/<ns>/<plural>/<name>``; attempts
    append to it."""
    md = job["metadata"]
    directory = config.logs_dir() / str(md.get("namespace") or "default") / plural(job)
    return str(directory / md["name"] / f"{md['name']}-{rtype.lower()}-{index}.log")


def plural(job: Resource) -> str:
    """The kind's REST plural (every training kind's plural is its lower-case name + "s"), which
    is where the ``/log`` endpoint looks for logs."""
    return f"{str(job['kind']).lower()}s"


def process_name(job: Resource, attempt: int, rtype: str, index: int) -> str:
    md = job["metadata"]
    uid = str(md.get("uid") or "")[:8]
    return (
        f"{str(job['kind']).lower()}.{md.get('namespace') or 'default'}.{md['name']}."
        f"{uid}.{attempt}.{rtype.lower()}-{index}"
    )


def replica_keys(job: Resource) -> list[tuple[str, int]]:
    return [(t, i) for t, spec in ordered_replicas(job) for i in range(replica_count(spec))]


def plan_v1_network(job: Resource) -> GangNetwork:
    framework = framework_of(job)
    keys = replica_keys(job)
    master = next(((t, 0) for t in framework.master_types if (t, 0) in keys), None)
    if framework.kind == "XGBoostJob":
        return plan_network(keys, master, shared_port_types=("Worker",))
    return plan_network(keys, master)


def plan_v1(
    job: Resource,
    attempt: int,
    net: GangNetwork,
    base_labels: dict[str, str],
    deadline_seconds: float | None = None,
) -> list[Member]:
    """The gang of one attempt of a defaulted, validated v1 job."""
    framework = framework_of(job)
    workdir = job_dir(job)
    members = []
    mpi_files: dict[str, Path] = {}
    spec = job.get("spec") or {}
    if framework.kind == "MPIJob":
        workers = replica_count(
            (spec.get("mpiReplicaSpecs") or {}).get("Worker") or {"replicas": 0}
        )
        mpi_files = mpi.write_launcher_files(workdir / "mpi", workers, int(spec["slotsPerWorker"]))
    for rtype, replica in ordered_replicas(job):
        pod = (replica.get("template") or {}).get("spec") or {}
        container = main_container(framework, pod) or {}
        for index in range(replica_count(replica)):
            env = _container_env(container, job, rtype, index)
            env.update(framework_env(job, rtype, index, net))
            argv = host_argv(container)
            if framework.kind == "MPIJob":
                if rtype == "Worker":
                    argv = mpi.worker_argv()
                else:
                    env.update(mpi.launcher_env(mpi_files, int(spec["slotsPerWorker"])))
            labels = {
                **base_labels,
                LABEL_JOB_NAME: job["metadata"]["name"],
                LABEL_REPLICA_TYPE: rtype.lower(),
                LABEL_REPLICA_INDEX: str(index),
                LABEL_ATTEMPT: str(attempt),
            }
            if rtype in framework.master_types:
                labels[LABEL_JOB_ROLE] = "master"
            members.append(
                Member(
                    rtype,
                    index,
                    str(replica.get("restartPolicy")),
                    ProcessSpec(
                        name=process_name(job, attempt, rtype, index),
                        argv=argv,
                        env=env,
                        cwd=container.get("workingDir") or str(_ensure(workdir)),
                        resources=_resources(container),
                        log_path=log_path(job, rtype, index),
                        labels=labels,
                        deadline_seconds=deadline_seconds,
                    ),
                )
            )
    return members


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _resources(container: dict[str, Any]) -> Any:
    block = container.get("resources") or {}
    return resources_from_kubernetes(block.get("requests"), block.get("limits"))


def host_path_env() -> str:
    """``PATH`` with this interpreter's directory first, so ``python3`` and console scripts
    (``torchrun``) in a job's command find the same environment flowyard runs in."""
    bindir = os.path.dirname(sys.executable)
    return os.pathsep.join([bindir, os.environ.get("PATH", os.defpath)])


def _container_env(
    container: dict[str, Any], job: Resource, rtype: str, index: int
) -> dict[str, str]:
    """The container's own ``env`` (literal values; ``fieldRef`` to the pod's name/namespace),
    plus ``HOSTNAME`` as the upstream pod name and a ``PATH`` that finds this interpreter."""
    md = job["metadata"]
    pod_name = f"{md['name']}-{rtype.lower()}-{index}"
    fields = {
        "metadata.name": pod_name,
        "metadata.namespace": str(md.get("namespace") or ""),
        "metadata.uid": str(md.get("uid") or ""),
    }
    env = {"PATH": host_path_env(), "HOSTNAME": pod_name}
    for item in container.get("env") or []:
        if "valueFrom" in item:
            ref = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath", "")
            env[item["name"]] = fields.get(ref, "")
        else:
            env[item["name"]] = str(item.get("value", ""))
    return env
