"""The environment each replica gets, as the Training Operator v1.9 injects it (pure functions).

Names and values follow upstream exactly; only host names differ: upstream points at pod DNS
names (``<job>-master-0``), flowyard at loopback endpoints from :mod:`flowyard.training.network`.

* PyTorchJob: ``PYTHONUNBUFFERED=1``; with a Master: ``MASTER_PORT``, ``PET_MASTER_PORT``,
  ``MASTER_ADDR``, ``PET_MASTER_ADDR``, ``WORLD_SIZE`` (replicas x nprocPerNode when numeric),
  ``RANK`` and ``PET_NODE_RANK`` (workers are offset by one); ``PET_NPROC_PER_NODE``; elastic:
  ``PET_RDZV_ENDPOINT``, ``PET_RDZV_BACKEND`` (``c10d``), ``PET_NNODES=min:max``,
  ``PET_MAX_RESTARTS``, ``PET_RDZV_ID``, ``PET_RDZV_CONF`` (``k=v,k=v``), ``PET_STANDALONE``;
  otherwise ``PET_NNODES`` = total replicas.
* TFJob: ``TF_CONFIG`` (``{"cluster", "task", "environment": "cloud"}``, or the sparse form with
  ``enableDynamicWorker``) on the ``tensorflow`` container, only when the job has more than one
  replica.
* XGBoostJob: ``MASTER_PORT``, ``MASTER_ADDR``, ``WORLD_SIZE``, ``RANK`` (workers offset by the
  master count), ``PYTHONUNBUFFERED``; with more than one replica ``WORKER_PORT`` and
  ``WORKER_ADDRS``.
* MPIJob: the Launcher gets ``OMPI_MCA_plm_rsh_agent`` and ``OMPI_MCA_orte_default_hostfile``
  (see :mod:`flowyard.training.mpi`).
"""

from __future__ import annotations

import json
from typing import Any

from flowyard.resources.meta import Resource
from flowyard.training.frameworks import (
    PYTORCH,
    replica_count,
    replica_specs,
)
from flowyard.training.network import GangNetwork


def pytorch_env(job: Resource, rtype: str, index: int, net: GangNetwork) -> dict[str, str]:
    spec = job.get("spec") or {}
    specs = replica_specs(job)
    total = sum(replica_count(s) for s in specs.values())
    nproc = spec.get("nprocPerNode")
    env = {"PYTHONUNBUFFERED": "1"}
    if "Master" in specs:
        port, addr = str(net.master.port), net.master.host
        rank = index + 1 if rtype == "Worker" else index
        world = total * (int(nproc) if isinstance(nproc, str) and nproc.isdigit() else 1)
        env.update(
            MASTER_PORT=port,
            PET_MASTER_PORT=port,
            MASTER_ADDR=addr,
            PET_MASTER_ADDR=addr,
            WORLD_SIZE=str(world),
            RANK=str(rank),
            PET_NODE_RANK=str(rank),
        )
    if nproc is not None:
        env["PET_NPROC_PER_NODE"] = str(nproc)
    elastic = spec.get("elasticPolicy")
    if isinstance(elastic, dict):
        env.update(_elastic_env(job, elastic, net))
    else:
        env["PET_NNODES"] = str(total)
    return env


def _elastic_env(job: Resource, elastic: dict[str, Any], net: GangNetwork) -> dict[str, str]:
    worker0 = net.endpoints.get(("Worker", 0), net.master)
    host = elastic.get("rdzvHost") or worker0.host
    port = elastic.get("rdzvPort") or worker0.port
    env = {
        "PET_RDZV_ENDPOINT": f"{host}:{port}",
        "PET_RDZV_BACKEND": str(elastic.get("rdzvBackend") or "c10d"),
    }
    low, high = elastic.get("minReplicas"), elastic.get("maxReplicas")
    if low is None and high is None:
        env["PET_NNODES"] = str(replica_count(replica_specs(job).get("Worker") or {}))
    else:
        env["PET_NNODES"] = f"{low}:{high}"
    if elastic.get("maxRestarts") is not None:
        env["PET_MAX_RESTARTS"] = str(elastic["maxRestarts"])
    if elastic.get("nProcPerNode") is not None:
        env["PET_NPROC_PER_NODE"] = str(elastic["nProcPerNode"])
    if elastic.get("rdzvId") is not None:
        env["PET_RDZV_ID"] = str(elastic["rdzvId"])
    conf = elastic.get("rdzvConf")
    if conf:
        env["PET_RDZV_CONF"] = ",".join(f"{c.get('key')}={c.get('value')}" for c in conf)
    if elastic.get("standalone"):
        env["PET_STANDALONE"] = ""
    return env


def tf_cluster_spec(job: Resource, net: GangNetwork) -> dict[str, list[str]]:
    """``{"chief": ["127.0.0.1:p"], "ps": [...], "worker": [...]}`` (keys sorted as Go does)."""
    cluster: dict[str, list[str]] = {}
    for rtype, spec in sorted(replica_specs(job).items(), key=lambda kv: kv[0].lower()):
        cluster[rtype.lower()] = [str(net.of(rtype, i)) for i in range(replica_count(spec))]
    return cluster


def tf_config(job: Resource, rtype: str, index: int, net: GangNetwork) -> str | None:
    """The ``TF_CONFIG`` JSON for one replica, or None for a single-replica (local) job."""
    if sum(replica_count(s) for s in replica_specs(job).values()) == 1:
        return None
    cluster = tf_cluster_spec(job, net)
    task = {"type": rtype.lower(), "index": index}
    if (job.get("spec") or {}).get("enableDynamicWorker"):
        sparse: dict[str, Any] = {"worker": {}, "ps": []}
        if rtype.lower() == "ps":
            sparse["ps"] = [cluster["ps"][index]]
        elif rtype.lower() == "worker":
            sparse["ps"] = cluster.get("ps", [])
            sparse["worker"] = {str(index): cluster["worker"][index]}
        return json.dumps({"cluster": sparse, "task": task}, separators=(",", ":"))
    config = {"cluster": cluster, "task": task, "environment": "cloud"}
    return json.dumps(config, separators=(",", ":"))


def tf_env(job: Resource, rtype: str, index: int, net: GangNetwork) -> dict[str, str]:
    value = tf_config(job, rtype, index, net)
    return {"TF_CONFIG": value} if value is not None else {}


def xgboost_env(job: Resource, rtype: str, index: int, net: GangNetwork) -> dict[str, str]:
    specs = replica_specs(job)
    total = sum(replica_count(s) for s in specs.values())
    rank = index + (replica_count(specs.get("Master") or {}) if rtype == "Worker" else 0)
    env = {
        "MASTER_PORT": str(net.master.port),
        "MASTER_ADDR": net.master.host,
        "WORLD_SIZE": str(total),
        "RANK": str(rank),
        "PYTHONUNBUFFERED": "1",
    }
    if total > 1:
        workers = [
            net.endpoints[("Worker", i)] for i in range(total - 1) if ("Worker", i) in net.endpoints
        ]
        # Upstream all workers listen on one WORKER_PORT at their own pod address; here each
        # worker gets its own loopback address and one common port (network.shared_port_hosts).
        env["WORKER_PORT"] = str(workers[0].port if workers else net.master.port)
        env["WORKER_ADDRS"] = ",".join(w.host for w in workers)
    return env


def framework_env(job: Resource, rtype: str, index: int, net: GangNetwork) -> dict[str, str]:
    """The injected environment of one v1 replica (MPI's launcher env needs files: see
    :func:`flowyard.training.mpi.launcher_env`)."""
    kind = job.get("kind")
    if kind == PYTORCH.kind:
        return pytorch_env(job, rtype, index, net)
    if kind == "TFJob":
        return tf_env(job, rtype, index, net)
    if kind == "XGBoostJob":
        return xgboost_env(job, rtype, index, net)
    return {}
