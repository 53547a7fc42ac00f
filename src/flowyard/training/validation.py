"""Semantic validation of the v1 job kinds (after defaulting), as the Training Operator v1.9
webhooks do it, plus what running on one host adds.

Upstream rules: the name is a DNS-1035 label; the replica map is required; every replica type is
one the kind knows; each replica has containers with an image and one container named like the
kind's default (``pytorch``, ``tensorflow``, ``xgboost``, ``mpi``); PyTorchJob and XGBoostJob
have exactly one Master, XGBoostJob must have one; a PyTorchJob Worker count is at least 1; a
TFJob has at most one Chief or Master; an elastic PyTorchJob needs Workers and may not set both
``elasticPolicy.nProcPerNode`` and ``nprocPerNode``; ``runPolicy.managedBy`` is immutable.

Host rules: ``replicas`` is not negative; the main container has a ``command`` (we run processes
on this machine, not the image's entrypoint); the whole gang fits on this machine.
"""

from __future__ import annotations

import re
from typing import Any

from flowyard.errors import FieldCause
from flowyard.executors.base import Resources
from flowyard.resources.meta import Resource
from flowyard.resources.quantity import resources_from_kubernetes
from flowyard.training.capacity import gang_causes
from flowyard.training.commands import has_command
from flowyard.training.frameworks import (
    FRAMEWORKS,
    RESTART_POLICIES,
    Framework,
    main_container,
    replica_count,
    run_policy,
)

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MANAGED_BY = ("kubeflow.org/training-operator", "kueue.x-k8s.io/multikueue")
_EXPLAIN_COMMAND = (
    "flowyard runs each replica as a process on this machine, not inside the image, so the "
    "image's entrypoint is not known: set command (and args), e.g. command: [python3, train.py]"
)


def validate_v1_job(new: Resource, old: Resource | None) -> list[FieldCause]:
    """Every semantic problem of a defaulted v1 job (the registry's validator)."""
    framework = FRAMEWORKS[str(new.get("kind"))]
    causes = _name_causes(new)
    spec = new.get("spec") or {}
    causes += _run_policy_causes(new, old)
    specs = spec.get(framework.replica_field)
    root = f"spec.{framework.replica_field}"
    if not isinstance(specs, dict) or not specs:
        return [*causes, FieldCause(root, "Required value: must be required", "FieldValueRequired")]
    members: list[Resources] = []
    for rtype, replica in specs.items():
        path = f"{root}[{rtype}]"
        if rtype not in framework.replica_types:
            options = ", ".join(f'"{t}"' for t in framework.replica_types)
            causes.append(
                FieldCause(
                    path,
                    f'Unsupported value: "{rtype}": supported values: {options}',
                    "FieldValueNotSupported",
                )
            )
            continue
        if not isinstance(replica, dict):
            causes.append(FieldCause(path, "Invalid value: must be an object"))
            continue
        causes += _replica_causes(framework, path, rtype, replica)
        members += _replica_resources(framework, path, replica, causes)
    causes += _KIND_RULES.get(framework.kind, _no_rules)(spec, root)
    if not causes:
        causes += gang_causes(root, members, f"{framework.kind} {new['metadata'].get('name')!r}")
    return causes


def _name_causes(obj: Resource) -> list[FieldCause]:
    name = (obj.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name or (_DNS1035.match(name) and len(name) <= 63):
        return []
    return [
        FieldCause(
            "metadata.name",
            f"Invalid value: {name!r}: should match: a DNS-1035 "
            "label must consist of lower case alphanumeric characters or '-', start "
            "with an alphabetic character, and end with an alphanumeric character "
            "(at most 63 characters)",
        )
    ]


def _run_policy_causes(new: Resource, old: Resource | None) -> list[FieldCause]:
    causes = []
    policy = run_policy(new)
    manager = policy.get("managedBy")
    if manager is not None and manager not in _MANAGED_BY:
        options = ", ".join(f'"{m}"' for m in _MANAGED_BY)
        causes.append(
            FieldCause(
                "spec.runPolicy.managedBy",
                f'Unsupported value: "{manager}": supported values: {options}',
                "FieldValueNotSupported",
            )
        )
    if old is not None and run_policy(old).get("managedBy") != manager:
        causes.append(
            FieldCause(
                "spec.runPolicy.managedBy", "Invalid value: field is immutable", "FieldValueInvalid"
            )
        )
    for key in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        value = policy.get(key)
        if isinstance(value, int) and value < 0:
            causes.append(
                FieldCause(
                    f"spec.runPolicy.{key}",
                    f"Invalid value: {value}: must be greater than or equal to 0",
                )
            )
    return causes


def _replica_causes(
    framework: Framework, path: str, rtype: str, replica: dict[str, Any]
) -> list[FieldCause]:
    causes = []
    replicas = replica.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        causes.append(
            FieldCause(
                f"{path}.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"
            )
        )
    elif rtype in framework.master_types and framework.kind != "TFJob" and replicas != 1:
        causes.append(FieldCause(f"{path}.replicas", "Forbidden: must be 1", "FieldValueForbidden"))
    elif framework.kind == "PyTorchJob" and rtype == "Worker" and replica_count(replica) < 1:
        causes.append(
            FieldCause(f"{path}.replicas", "Forbidden: must be at least 1", "FieldValueForbidden")
        )
    policy = replica.get("restartPolicy")
    if policy not in RESTART_POLICIES:
        options = ", ".join(f'"{p}"' for p in RESTART_POLICIES)
        causes.append(
            FieldCause(
                f"{path}.restartPolicy",
                f"Unsupported value: {policy!r}: supported values: {options}",
                "FieldValueNotSupported",
            )
        )
    containers_path = f"{path}.template.spec.containers"
    pod = (replica.get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or []
    if not containers:
        return [
            *causes,
            FieldCause(containers_path, "Required value: must be specified", "FieldValueRequired"),
        ]
    for idx, container in enumerate(containers):
        if not container.get("image"):
            causes.append(
                FieldCause(
                    f"{containers_path}[{idx}].image",
                    "Required value: must be required",
                    "FieldValueRequired",
                )
            )
    if not any(c.get("name") == framework.container_name for c in containers):
        causes.append(
            FieldCause(
                containers_path,
                "Required value: must have at least one "
                f"container with name {framework.container_name}",
                "FieldValueRequired",
            )
        )
    main = main_container(framework, pod)
    if main is not None and replica_count(replica) > 0 and not has_command(main):
        idx = containers.index(main)
        causes.append(
            FieldCause(
                f"{containers_path}[{idx}].command",
                f"Required value: {_EXPLAIN_COMMAND}",
                "FieldValueRequired",
            )
        )
    return causes


def _replica_resources(
    framework: Framework, path: str, replica: dict[str, Any], causes: list[FieldCause]
) -> list[Resources]:
    pod = (replica.get("template") or {}).get("spec") or {}
    main = main_container(framework, pod)
    if main is None:
        return []
    block = main.get("resources") or {}
    idx = (pod.get("containers") or []).index(main)
    field = f"{path}.template.spec.containers[{idx}].resources"
    try:
        one = resources_from_kubernetes(block.get("requests"), block.get("limits"), field=field)
    except Exception as exc:  # InvalidError with its own cause
        causes.extend(getattr(exc, "causes", []) or [FieldCause(field, str(exc))])
        return []
    return [one] * max(replica_count(replica), 0)


def _no_rules(spec: dict[str, Any], root: str) -> list[FieldCause]:
    return []


def _pytorch_rules(spec: dict[str, Any], root: str) -> list[FieldCause]:
    causes = []
    elastic = spec.get("elasticPolicy")
    if isinstance(elastic, dict):
        if "Worker" not in (spec.get(root.split(".", 1)[1]) or {}):
            causes.append(
                FieldCause(
                    f"{root}[Worker]",
                    "Required value: must be configured if elastic policy is used",
                    "FieldValueRequired",
                )
            )
        if elastic.get("nProcPerNode") is not None and spec.get("nprocPerNode") is not None:
            causes.append(
                FieldCause(
                    "spec.elasticPolicy.nProcPerNode",
                    "Forbidden: must not be used with spec.nprocPerNode",
                    "FieldValueForbidden",
                )
            )
        low, high = elastic.get("minReplicas"), elastic.get("maxReplicas")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            causes.append(
                FieldCause(
                    "spec.elasticPolicy.minReplicas",
                    f"Invalid value: {low}: must not be greater than maxReplicas ({high})",
                )
            )
    return causes


def _tensorflow_rules(spec: dict[str, Any], root: str) -> list[FieldCause]:
    specs = spec.get("tfReplicaSpecs") or {}
    if sum(1 for t in ("Chief", "Master") if t in specs) > 1:
        return [
            FieldCause(
                root,
                "Forbidden: must not have more than 1 Chief or Master role",
                "FieldValueForbidden",
            )
        ]
    policy = spec.get("successPolicy")
    if policy not in ("", "AllWorkers"):
        return [
            FieldCause(
                "spec.successPolicy",
                f'Unsupported value: {policy!r}: supported values: "", "AllWorkers"',
                "FieldValueNotSupported",
            )
        ]
    return []


def _xgboost_rules(spec: dict[str, Any], root: str) -> list[FieldCause]:
    if "Master" not in (spec.get("xgbReplicaSpecs") or {}):
        return [
            FieldCause(f"{root}[Master]", "Required value: must be present", "FieldValueRequired")
        ]
    return []


def _mpi_rules(spec: dict[str, Any], root: str) -> list[FieldCause]:
    causes = []
    if "Launcher" not in (spec.get("mpiReplicaSpecs") or {}):
        causes.append(
            FieldCause(
                f"{root}[Launcher]",
                "Required value: an MPIJob needs a Launcher (it runs mpirun)",
                "FieldValueRequired",
            )
        )
    slots = spec.get("slotsPerWorker")
    if isinstance(slots, int) and slots < 1:
        causes.append(
            FieldCause("spec.slotsPerWorker", f"Invalid value: {slots}: must be at least 1")
        )
    return causes


_KIND_RULES = {
    "PyTorchJob": _pytorch_rules,
    "TFJob": _tensorflow_rules,
    "XGBoostJob": _xgboost_rules,
    "MPIJob": _mpi_rules,
}
