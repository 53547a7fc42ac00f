"""Trainer v2: admission of TrainJob, TrainingRuntime and ClusterTrainingRuntime, and
resolving a TrainJob's ``runtimeRef`` (with ``runtimePatches`` applied) to the runtime spec.

Checks that need other objects (does the runtime exist? does it give the node a command?) run
at admission when the control plane installed a lookup with :func:`set_runtime_lookup`, and
always again at reconcile time (:func:`resolve_runtime` raises NotFoundError naming the
runtime and how to create it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowyard.errors import FieldCause, NotFoundError
from flowyard.executors.base import Resources
from flowyard.resources.meta import Resource
from flowyard.resources.quantity import resources_from_kubernetes
from flowyard.training.capacity import gang_causes
from flowyard.training.commands import has_command

GROUP = "trainer.kubeflow.org"
RUNTIME_KINDS = ("ClusterTrainingRuntime", "TrainingRuntime")
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"
TRAINER_ANCESTOR, NODE = "trainer", "node"
DATASET_INITIALIZER, MODEL_INITIALIZER = "dataset-initializer", "model-initializer"
TORCH_RESERVED_ENV = (
    "PET_NNODES",
    "PET_NPROC_PER_NODE",
    "PET_NODE_RANK",
    "PET_MASTER_ADDR",
    "PET_MASTER_PORT",
)
SUPPORTED_POLICIES = ("torch",)  # plus no framework policy at all (plain command)
STORAGE_SCHEMES = ("file://", "/", "s3://", "http://", "https://")

RuntimeLookup = Callable[[str, str, str], Resource | None]
"""``(kind, namespace, name) -> runtime or None``."""

_lookup: RuntimeLookup | None = None


def set_runtime_lookup(lookup: RuntimeLookup | None) -> None:
    """Let admission check ``runtimeRef`` against stored runtimes (None: skip that check)."""
    global _lookup
    _lookup = lookup


def resolve_runtime(job: Resource, lookup: RuntimeLookup) -> Resource:
    """The runtime ``job.spec.runtimeRef`` names, NotFoundError if it does not exist."""
    ref = (job.get("spec") or {}).get("runtimeRef") or {}
    kind = str(ref.get("kind") or "ClusterTrainingRuntime")
    name = str(ref.get("name") or "")
    namespace = str(job["metadata"].get("namespace") or "default")
    runtime = lookup(kind, "" if kind == "ClusterTrainingRuntime" else namespace, name)
    if runtime is None:
        where = "" if kind == "ClusterTrainingRuntime" else f' in namespace "{namespace}"'
        raise NotFoundError(
            f'TrainJob "{job["metadata"]["name"]}": spec.runtimeRef: {kind} "{name}" not found'
            f"{where}; create it first (flowyard ships the ClusterTrainingRuntime "
            '"torch-distributed") or fix runtimeRef.name'
        )
    return runtime


def effective_runtime_spec(job: Resource, runtime: Resource) -> dict[str, Any]:
    """The runtime's spec with the TrainJob's ``runtimePatches`` merged in (lists of named
    items merge by ``name``, as a strategic merge patch does)."""
    spec: dict[str, Any] = _copy(runtime.get("spec") or {})
    for patch in (job.get("spec") or {}).get("runtimePatches") or []:
        runtime_patch = (patch or {}).get("trainingRuntimeSpec")
        if isinstance(runtime_patch, dict):
            spec = merge(spec, runtime_patch)
    return spec


def merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base.get(key), value) if key in base else _copy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        out_list = [_copy(b) for b in base]
        index = {b["name"]: i for i, b in enumerate(out_list)}
        for item in patch:
            if item["name"] in index:
                out_list[index[item["name"]]] = merge(out_list[index[item["name"]]], item)
            else:
                out_list.append(_copy(item))
        return out_list
    return _copy(patch)


def _named(items: list[Any]) -> bool:
    return all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def replicated_jobs(runtime_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(
        ((runtime_spec.get("template") or {}).get("spec") or {}).get("replicatedJobs") or []
    )


def ancestor(rjob: dict[str, Any]) -> str:
    labels = ((rjob.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return str(labels.get(ANCESTOR_LABEL) or rjob.get("name") or "")


def trainer_job(runtime_spec: dict[str, Any]) -> dict[str, Any] | None:
    """The replicated job that runs the trainer (ancestor label ``trainer``, or named node)."""
    jobs = replicated_jobs(runtime_spec)
    return next((j for j in jobs if ancestor(j) == TRAINER_ANCESTOR), None) or next(
        (j for j in jobs if j.get("name") == NODE), None
    )


def node_container(rjob: dict[str, Any]) -> dict[str, Any]:
    pod = (((rjob.get("template") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or [{}]
    return next((c for c in containers if c.get("name") == NODE), containers[0])


def framework_policy(runtime_spec: dict[str, Any]) -> str | None:
    """The ``mlPolicy`` framework (``torch``, ``mpi``, ...) or None for a plain runtime."""
    policy = runtime_spec.get("mlPolicy") or {}
    return next((k for k in ("torch", "mpi", "xgboost", "jax", "flux") if k in policy), None)


def num_nodes(job: Resource, runtime_spec: dict[str, Any]) -> int:
    trainer = (job.get("spec") or {}).get("trainer") or {}
    value = trainer.get("numNodes") or (runtime_spec.get("mlPolicy") or {}).get("numNodes") or 1
    return int(value)


def node_resources(job: Resource, runtime_spec: dict[str, Any]) -> Resources:
    trainer = (job.get("spec") or {}).get("trainer") or {}
    block = trainer.get("resourcesPerNode")
    field = "spec.trainer.resourcesPerNode"
    if block is None:
        rjob = trainer_job(runtime_spec) or {}
        block = node_container(rjob).get("resources") or {}
        field = "runtime node container resources"
    return resources_from_kubernetes(block.get("requests"), block.get("limits"), field=field)


# -- admission ---------------------------------------------------------------------------
def validate_trainjob(new: Resource, old: Resource | None) -> list[FieldCause]:
    spec = new.get("spec") or {}
    causes = _ref_causes(spec, old)
    trainer = spec.get("trainer") or {}
    for key in ("numNodes", "numProcPerNode"):
        value = trainer.get(key)
        if isinstance(value, int) and value < 1:
            causes.append(
                FieldCause(
                    f"spec.trainer.{key}",
                    f"Invalid value: {value}: must be greater than or equal to 1",
                )
            )
    for kind in ("dataset", "model"):
        uri = ((spec.get("initializer") or {}).get(kind) or {}).get("storageUri")
        if uri is not None and not str(uri).startswith(STORAGE_SCHEMES):
            causes.append(
                FieldCause(
                    f"spec.initializer.{kind}.storageUri",
                    f"Unsupported value: "
                    f"{uri!r}: supported: a local path (/data or file:///data), "
                    "s3://bucket/key or http(s)://host/path",
                    "FieldValueNotSupported",
                )
            )
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline < 1:
        causes.append(
            FieldCause(
                "spec.activeDeadlineSeconds",
                f"Invalid value: {deadline}: must be greater than or equal to 1",
            )
        )
    if causes or _lookup is None:
        return causes
    try:
        runtime = resolve_runtime(new, _lookup)
    except NotFoundError as exc:
        return [
            FieldCause("spec.runtimeRef.name", f"Not found: {exc.message}", "FieldValueNotFound")
        ]
    return _runtime_dependent_causes(new, effective_runtime_spec(new, runtime))


def _ref_causes(spec: dict[str, Any], old: Resource | None) -> list[FieldCause]:
    causes = []
    ref = spec.get("runtimeRef") or {}
    if ref.get("apiGroup", GROUP) != GROUP:
        causes.append(
            FieldCause(
                "spec.runtimeRef.apiGroup",
                f'Unsupported value: {ref.get("apiGroup")!r}: supported values: "{GROUP}"',
                "FieldValueNotSupported",
            )
        )
    if ref.get("kind", RUNTIME_KINDS[0]) not in RUNTIME_KINDS:
        causes.append(
            FieldCause(
                "spec.runtimeRef.kind",
                f"Unsupported value: {ref.get('kind')!r}"
                ': supported values: "ClusterTrainingRuntime", "TrainingRuntime"',
                "FieldValueNotSupported",
            )
        )
    if old is not None and (old.get("spec") or {}).get("runtimeRef") != spec.get("runtimeRef"):
        causes.append(FieldCause("spec.runtimeRef", "Invalid value: field is immutable"))
    return causes


def _runtime_dependent_causes(job: Resource, runtime_spec: dict[str, Any]) -> list[FieldCause]:
    causes = []
    policy = framework_policy(runtime_spec)
    if policy is not None and policy not in SUPPORTED_POLICIES:
        causes.append(
            FieldCause(
                "spec.runtimeRef",
                f"Unsupported value: the runtime's mlPolicy "
                f"is {policy!r}; flowyard runs torch and plain runtimes",
                "FieldValueNotSupported",
            )
        )
    trainer = (job.get("spec") or {}).get("trainer") or {}
    rjob = trainer_job(runtime_spec)
    if rjob is None:
        return [
            *causes,
            FieldCause(
                "spec.runtimeRef",
                "Invalid value: the runtime has no trainer "
                "replicated job (label trainer.kubeflow.org/trainjob-ancestor"
                "-step: trainer, or a job named node)",
            ),
        ]
    if not trainer.get("command") and not has_command(node_container(rjob)):
        causes.append(
            FieldCause(
                "spec.trainer.command",
                "Required value: flowyard runs the "
                "trainer as processes on this machine, not inside the image, so "
                "the image's entrypoint is not known: set spec.trainer.command "
                "(or a command in the runtime's node container)",
                "FieldValueRequired",
            )
        )
    if policy == "torch":
        for i, env in enumerate(trainer.get("env") or []):
            if env.get("name") in TORCH_RESERVED_ENV:
                causes.append(
                    FieldCause(
                        f"spec.trainer.env[{i}]",
                        f"Invalid value: "
                        f"{env.get('name')!r}: must not have reserved envs, "
                        f"{', '.join(TORCH_RESERVED_ENV)} are set by the runtime",
                    )
                )
    if not causes:
        try:
            one = node_resources(job, runtime_spec)
        except Exception as exc:  # an InvalidError naming the quantity
            return [*causes, *getattr(exc, "causes", [FieldCause("spec.trainer", str(exc))])]
        nodes = num_nodes(job, runtime_spec)
        causes += gang_causes(
            "spec.trainer.numNodes",
            [one] * nodes,
            f"TrainJob {job['metadata'].get('name')!r} with {nodes} nodes",
        )
    return causes


def validate_runtime(new: Resource, old: Resource | None) -> list[FieldCause]:
    spec = new.get("spec") or {}
    causes = []
    if not replicated_jobs(spec):
        causes.append(
            FieldCause(
                "spec.template.spec.replicatedJobs",
                "Required value: a runtime needs at least one replicated job",
                "FieldValueRequired",
            )
        )
    policy = spec.get("mlPolicy") or {}
    frameworks = [k for k in ("torch", "mpi", "xgboost", "jax", "flux") if k in policy]
    if len(frameworks) > 1:
        causes.append(
            FieldCause("spec.mlPolicy", f"Invalid value: only one of {frameworks} may be set")
        )
    nodes = policy.get("numNodes")
    if isinstance(nodes, int) and nodes < 1:
        causes.append(
            FieldCause(
                "spec.mlPolicy.numNodes",
                f"Invalid value: {nodes}: must be greater than or equal to 1",
            )
        )
    return causes


HOOKS: dict[str, dict[str, tuple[Callable[..., Any], ...]]] = {
    "TrainJob": {"validators": (validate_trainjob,)},
    "TrainingRuntime": {"validators": (validate_runtime,)},
    "ClusterTrainingRuntime": {"validators": (validate_runtime,)},
}
