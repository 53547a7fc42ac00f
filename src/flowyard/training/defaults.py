"""Defaulting of the v1 job kinds, as the Training Operator v1.9 webhook does it.

For every kind: ``runPolicy.cleanPodPolicy`` defaults to ``None``; replica map keys are
case-normalised (``worker`` -> ``Worker``, ``ps`` -> ``PS``); each replica gets ``replicas: 1``
and the kind's default ``restartPolicy``; the kind's main container (the one named like the
framework default, else the first) gets the default named port unless it declares one.

Per kind: PyTorchJob fills ``elasticPolicy.minReplicas``/``maxReplicas`` from each other or
from the worker count and ``nprocPerNode: "auto"``; TFJob ``successPolicy: ""``; MPIJob mirrors
``cleanPodPolicy`` into the deprecated top-level field, defaults the worker count to 0 and
``slotsPerWorker`` to 1 (the CRD default).
"""

from __future__ import annotations

from typing import Any

from flowyard.resources.meta import Resource
from flowyard.training.frameworks import FRAMEWORKS, Framework, main_container

DEFAULT_NPROC_PER_NODE = "auto"


def default_v1_job(job: Resource) -> None:
    """Fill in the defaults of any v1 job kind in place (the registry's defaulter)."""
    framework = FRAMEWORKS[str(job.get("kind"))]
    spec = job.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    _default_run_policy(framework, spec)
    specs = spec.get(framework.replica_field)
    if isinstance(specs, dict):
        spec[framework.replica_field] = normalise_replica_types(framework, specs)
        for rtype, replica in spec[framework.replica_field].items():
            if isinstance(replica, dict):
                _default_replica(framework, rtype, replica)
    extra = _KIND_DEFAULTS.get(framework.kind)
    if extra is not None:
        extra(spec)


def normalise_replica_types(framework: Framework, specs: dict[str, Any]) -> dict[str, Any]:
    """Rename keys that match a replica type case-insensitively; keep unknown keys as they are
    (validation reports them)."""
    out: dict[str, Any] = {}
    for key, value in specs.items():
        canonical = framework.canonical_type(str(key)) or str(key)
        if canonical in out and canonical != key:
            out[key] = value  # a duplicate in another case stays visible to validation
            continue
        out[canonical] = value
    return out


def _default_run_policy(framework: Framework, spec: dict[str, Any]) -> None:
    policy = spec.setdefault("runPolicy", {})
    if not isinstance(policy, dict):
        return
    if framework.kind == "MPIJob":
        if spec.get("cleanPodPolicy") is None and policy.get("cleanPodPolicy") is None:
            spec["cleanPodPolicy"] = "None"
            policy["cleanPodPolicy"] = "None"
        return
    policy.setdefault("cleanPodPolicy", "None")


def _default_replica(framework: Framework, rtype: str, replica: dict[str, Any]) -> None:
    if replica.get("replicas") is None:
        # MPIJob workers default to 0, every other replica type to 1.
        replica["replicas"] = 0 if (framework.kind == "MPIJob" and rtype == "Worker") else 1
    if not replica.get("restartPolicy"):
        replica["restartPolicy"] = framework.restart_policy
    if framework.kind == "MPIJob":
        return  # upstream sets no default port on MPIJob containers
    pod = ((replica.get("template") or {}).get("spec")) or {}
    container = main_container(framework, pod)
    if container is None:
        return
    ports = container.setdefault("ports", [])
    if isinstance(ports, list) and not any(
        isinstance(p, dict) and p.get("name") == framework.port_name for p in ports
    ):
        ports.append({"name": framework.port_name, "containerPort": framework.port})


def _default_pytorch(spec: dict[str, Any]) -> None:
    elastic = spec.get("elasticPolicy")
    if isinstance(elastic, dict):
        low, high = elastic.get("minReplicas"), elastic.get("maxReplicas")
        if low is None and high is not None:
            elastic["minReplicas"] = high
        elif high is None and low is not None:
            elastic["maxReplicas"] = low
        elif low is None and high is None:
            worker = (spec.get("pytorchReplicaSpecs") or {}).get("Worker")
            if isinstance(worker, dict) and worker.get("replicas") is not None:
                elastic["minReplicas"] = elastic["maxReplicas"] = worker["replicas"]
    elastic_nproc = isinstance(elastic, dict) and elastic.get("nProcPerNode") is not None
    if not elastic_nproc and spec.get("nprocPerNode") is None:
        spec["nprocPerNode"] = DEFAULT_NPROC_PER_NODE


def _default_tensorflow(spec: dict[str, Any]) -> None:
    if spec.get("successPolicy") is None:
        spec["successPolicy"] = ""


def _default_mpi(spec: dict[str, Any]) -> None:
    if spec.get("slotsPerWorker") is None:
        spec["slotsPerWorker"] = 1


_KIND_DEFAULTS = {
    "PyTorchJob": _default_pytorch,
    "TFJob": _default_tensorflow,
    "MPIJob": _default_mpi,
}


def apply_schema_defaults(obj: Any, schema: dict[str, Any]) -> None:
    """Set every ``default`` an openAPIV3Schema declares on a missing field, in place, as the
    Kubernetes API server does for CRDs (``runtimeRef.kind`` -> ``ClusterTrainingRuntime``).

    Only fields whose parent object exists are defaulted, as in Kubernetes.
    """
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in obj and isinstance(sub, dict) and "default" in sub:
                obj[key] = _copy(sub["default"])
            if key in obj:
                apply_schema_defaults(obj[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in obj.items():
                if key not in props:
                    apply_schema_defaults(value, extra)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            apply_schema_defaults(item, schema["items"])


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
