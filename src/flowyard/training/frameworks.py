"""What differs between the Training Operator v1 job kinds, as data.

Each v1 kind (PyTorchJob, TFJob, XGBoostJob, MPIJob) keeps its replicas in a map under one spec
field (``pytorchReplicaSpecs``, ...), has a fixed set of replica types, a default container name,
a default port name and number, and a default ``restartPolicy``. The values are the Training
Operator v1.9 ones; everything else in :mod:`flowyard.training` reads them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowyard.resources.meta import Resource

GROUP = "kubeflow.org"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True)
class Framework:
    """One v1 job kind."""

    kind: str
    replica_field: str
    replica_types: tuple[str, ...]
    container_name: str
    port_name: str
    port: int
    restart_policy: str
    # The replica type whose completion completes the job ("" = workers decide).
    master_types: tuple[str, ...]

    def canonical_type(self, name: str) -> str | None:
        """``worker``/``WORKER`` -> ``Worker``; None if ``name`` is no replica type of this kind."""
        return next((t for t in self.replica_types if t.lower() == name.lower()), None)


PYTORCH = Framework(
    kind="PyTorchJob",
    replica_field="pytorchReplicaSpecs",
    replica_types=("Master", "Worker"),
    container_name="pytorch",
    port_name="pytorchjob-port",
    port=23456,
    restart_policy="OnFailure",
    master_types=("Master",),
)
TENSORFLOW = Framework(
    kind="TFJob",
    replica_field="tfReplicaSpecs",
    replica_types=("Chief", "Evaluator", "Master", "PS", "Worker"),
    container_name="tensorflow",
    port_name="tfjob-port",
    port=2222,
    restart_policy="Never",
    master_types=("Chief", "Master"),
)
XGBOOST = Framework(
    kind="XGBoostJob",
    replica_field="xgbReplicaSpecs",
    replica_types=("Master", "Worker"),
    container_name="xgboost",
    port_name="xgboostjob-port",
    port=9999,
    restart_policy="Never",
    master_types=("Master",),
)
MPI = Framework(
    kind="MPIJob",
    replica_field="mpiReplicaSpecs",
    replica_types=("Launcher", "Worker"),
    container_name="mpi",
    port_name="mpi-port",
    port=9999,
    restart_policy="Never",
    master_types=("Launcher",),
)

FRAMEWORKS: dict[str, Framework] = {f.kind: f for f in (PYTORCH, TENSORFLOW, XGBOOST, MPI)}

RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")
CLEAN_POD_POLICIES = ("All", "Running", "None")


def framework_of(job: Resource) -> Framework:
    """The framework of a v1 job object; KeyError for any other kind."""
    return FRAMEWORKS[str(job.get("kind"))]


def replica_specs(job: Resource) -> dict[str, dict[str, Any]]:
    """The job's replica map (``{}`` if missing or malformed)."""
    specs = (job.get("spec") or {}).get(framework_of(job).replica_field)
    return specs if isinstance(specs, dict) else {}


def replica_count(spec: dict[str, Any]) -> int:
    """``replicas`` of one replica spec, 1 when unset (the default)."""
    value = spec.get("replicas")
    return int(value) if isinstance(value, int) else 1


def run_policy(job: Resource) -> dict[str, Any]:
    """``spec.runPolicy`` (``{}`` if missing)."""
    value = (job.get("spec") or {}).get("runPolicy")
    return value if isinstance(value, dict) else {}


def ordered_replicas(job: Resource) -> list[tuple[str, dict[str, Any]]]:
    """Replica specs in the framework's canonical type order (stable process naming)."""
    specs = replica_specs(job)
    order = framework_of(job).replica_types
    known = [(t, specs[t]) for t in order if isinstance(specs.get(t), dict)]
    unknown = [(t, s) for t, s in specs.items() if t not in order and isinstance(s, dict)]
    return known + unknown


def main_container(framework: Framework, pod_spec: dict[str, Any]) -> dict[str, Any] | None:
    """The container named like the framework's default, else the first one (as upstream)."""
    containers = pod_spec.get("containers") or []
    for container in containers:
        if isinstance(container, dict) and container.get("name") == framework.container_name:
            return container
    return containers[0] if containers and isinstance(containers[0], dict) else None


def container_port(framework: Framework, spec: dict[str, Any]) -> int:
    """The port named ``framework.port_name`` in a replica's main container, else the default."""
    pod = ((spec.get("template") or {}).get("spec")) or {}
    container = main_container(framework, pod) or {}
    for port in container.get("ports") or []:
        if isinstance(port, dict) and port.get("name") == framework.port_name:
            return int(port.get("containerPort") or framework.port)
    return framework.port
