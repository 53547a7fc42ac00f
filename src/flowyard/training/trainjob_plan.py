"""From a TrainJob and its (patched) runtime to processes: initializers, then the trainer gang.

* Initializers: for ``spec.initializer.dataset``/``model`` with a ``storageUri``, one process each
  (``python -m flowyard.training.initializer``) that copies or downloads it into the job's
  workspace (``<workspace>/dataset``, ``<workspace>/model``; upstream mounts these at
  ``/workspace/dataset`` and ``/workspace/model``). They run before the trainer, as upstream's
  initializer jobs do, and the trainer nodes get ``DATASET_PATH``/``MODEL_PATH`` pointing there
  and the workspace as their working directory.
* Trainer: ``numNodes`` processes of the runtime's ``node`` container, with the TrainJob's
  ``command``, ``args``, ``env`` and ``resourcesPerNode`` overriding the runtime's. For a torch
  runtime each node gets ``PET_NNODES``, ``PET_NPROC_PER_NODE`` (``numProcPerNode``, or for
  "auto" without GPUs the node's whole CPU request, at least 1, as upstream), ``PET_NODE_RANK``,
  ``PET_MASTER_ADDR`` and ``PET_MASTER_PORT`` (node 0's loopback endpoint, a free port), plus
  ``JOB_COMPLETION_INDEX`` (the JobSet's Indexed Job index).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from flowyard import config
from flowyard.executors.base import ProcessSpec, Resources
from flowyard.resources.meta import Resource
from flowyard.training.commands import host_argv
from flowyard.training.network import GangNetwork, plan_network
from flowyard.training.plan import (
    LABEL_ATTEMPT,
    LABEL_REPLICA_INDEX,
    LABEL_REPLICA_TYPE,
    Member,
    host_path_env,
)
from flowyard.training.trainjob import (
    DATASET_INITIALIZER,
    MODEL_INITIALIZER,
    NODE,
    framework_policy,
    node_container,
    node_resources,
    num_nodes,
    trainer_job,
)

LABEL_TRAINJOB_NAME = "trainer.kubeflow.org/trainjob-name"


def workspace(job: Resource) -> Path:
    md = job["metadata"]
    return (
        config.home()
        / "training"
        / str(md.get("namespace") or "default")
        / "trainjob"
        / str(md["name"])
        / "workspace"
    )


def _log(job: Resource, what: str, index: int) -> str:
    md = job["metadata"]
    ns = str(md.get("namespace") or "default")
    return str(
        config.logs_dir() / ns / "trainjobs" / md["name"] / f"{md['name']}-{what}-{index}.log"
    )


def _name(job: Resource, attempt: int, what: str, index: int) -> str:
    md = job["metadata"]
    uid = str(md.get("uid") or "")[:8]
    return (
        f"trainjob.{md.get('namespace') or 'default'}.{md['name']}.{uid}.{attempt}.{what}-{index}"
    )


def initializer_members(
    job: Resource, attempt: int, labels: dict[str, str], python: str = sys.executable
) -> list[Member]:
    """One process per initializer with a ``storageUri`` (possibly none)."""
    members = []
    init = (job.get("spec") or {}).get("initializer") or {}
    for kind, what in (("dataset", DATASET_INITIALIZER), ("model", MODEL_INITIALIZER)):
        block = init.get(kind) or {}
        uri = block.get("storageUri")
        if not uri:
            continue
        env = {"PATH": host_path_env(), "STORAGE_URI": str(uri)}
        env.update(
            {e["name"]: str(e.get("value", "")) for e in block.get("env") or [] if "value" in e}
        )
        dest = workspace(job) / kind
        members.append(
            Member(
                what,
                0,
                "Never",
                ProcessSpec(
                    name=_name(job, attempt, what, 0),
                    argv=[
                        python,
                        "-m",
                        "flowyard.training.initializer",
                        "--uri",
                        str(uri),
                        "--dest",
                        str(dest),
                    ],
                    env=env,
                    cwd=str(_ensure(workspace(job))),
                    log_path=_log(job, what, 0),
                    labels={
                        **labels,
                        LABEL_TRAINJOB_NAME: job["metadata"]["name"],
                        LABEL_REPLICA_TYPE: what,
                        LABEL_REPLICA_INDEX: "0",
                        LABEL_ATTEMPT: str(attempt),
                    },
                ),
            )
        )
    return members


def trainer_network(job: Resource, runtime_spec: dict[str, Any]) -> GangNetwork:
    keys = [(NODE, i) for i in range(num_nodes(job, runtime_spec))]
    return plan_network(keys, (NODE, 0))


def trainer_members(
    job: Resource,
    runtime_spec: dict[str, Any],
    attempt: int,
    net: GangNetwork,
    labels: dict[str, str],
    deadline_seconds: float | None = None,
) -> list[Member]:
    """The trainer gang: ``numNodes`` node processes."""
    trainer = (job.get("spec") or {}).get("trainer") or {}
    container = dict(node_container(trainer_job(runtime_spec) or {}))
    if trainer.get("command"):
        container["command"] = trainer["command"]
        container["args"] = trainer.get("args") or []
    elif trainer.get("args"):
        container["args"] = trainer["args"]
    nodes = num_nodes(job, runtime_spec)
    resources = node_resources(job, runtime_spec)
    base_env = _env_list(container.get("env")) | _env_list(trainer.get("env"))
    members = []
    for index in range(nodes):
        env = {"PATH": host_path_env(), **base_env, "JOB_COMPLETION_INDEX": str(index)}
        env.update(_paths(job))
        env["FLOWYARD_PACKAGES_DIR"] = str(packages_dir())
        if framework_policy(runtime_spec) == "torch":
            env.update(torch_env(job, nodes, index, resources, net))
        members.append(
            Member(
                NODE,
                index,
                "Never",
                ProcessSpec(
                    name=_name(job, attempt, NODE, index),
                    argv=host_argv(container),
                    env=env,
                    cwd=str(_ensure(workspace(job))),
                    resources=resources,
                    log_path=_log(job, NODE, index),
                    labels={
                        **labels,
                        LABEL_TRAINJOB_NAME: job["metadata"]["name"],
                        LABEL_REPLICA_TYPE: NODE,
                        LABEL_REPLICA_INDEX: str(index),
                        LABEL_ATTEMPT: str(attempt),
                    },
                    deadline_seconds=deadline_seconds,
                ),
            )
        )
    return members


def torch_env(
    job: Resource, nodes: int, index: int, resources: Resources, net: GangNetwork
) -> dict[str, str]:
    trainer = (job.get("spec") or {}).get("trainer") or {}
    nproc: str = "auto"
    if trainer.get("numProcPerNode") is not None:
        nproc = str(trainer["numProcPerNode"])
    elif resources.gpu == 0:
        nproc = str(max(1, int(resources.cpu)))
    return {
        "PET_NNODES": str(nodes),
        "PET_NPROC_PER_NODE": nproc,
        "PET_NODE_RANK": str(index),
        "PET_MASTER_ADDR": net.master.host,
        "PET_MASTER_PORT": str(net.master.port),
    }


def packages_dir() -> Path:
    """Where ``TrainerClient.train(packages_to_install=...)`` installs missing packages, one
    directory per set, shared by every job (``FLOWYARD_HOME/training/packages``)."""
    return config.home() / "training" / "packages"


def _paths(job: Resource) -> dict[str, str]:
    init = (job.get("spec") or {}).get("initializer") or {}
    out = {}
    if (init.get("dataset") or {}).get("storageUri"):
        out["DATASET_PATH"] = str(workspace(job) / "dataset")
    if (init.get("model") or {}).get("storageUri"):
        out["MODEL_PATH"] = str(workspace(job) / "model")
    return out


def _env_list(items: Any) -> dict[str, str]:
    return {
        e["name"]: str(e.get("value", ""))
        for e in items or []
        if isinstance(e, dict) and "name" in e and "valueFrom" not in e
    }


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
