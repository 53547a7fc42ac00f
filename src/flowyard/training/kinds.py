"""The training kinds and their admission hooks, registered by :func:`register_kinds`.

Names and printer columns are the upstream CRDs' (none of them declares short names; v1 jobs
and TrainJob show ``State`` = the last condition's type, and ``Age``). Each kind validates
against its CRD's ``openAPIV3Schema`` (``resources/schemas``), gets the CRD's schema defaults
and then its own defaulting and semantic validation.
"""

from __future__ import annotations

import threading

from flowyard.resources.meta import Resource
from flowyard.resources.registry import REGISTRY, KindInfo, KindRegistry, PrinterColumn
from flowyard.resources.schema import load_schema
from flowyard.training import frameworks
from flowyard.training.defaults import apply_schema_defaults, default_v1_job
from flowyard.training.validation import validate_v1_job

TRAINER_GROUP = "trainer.kubeflow.org"
TRAINER_VERSION = "v1alpha1"
TRAINER_API_VERSION = f"{TRAINER_GROUP}/{TRAINER_VERSION}"

_STATE = PrinterColumn("State", ".status.conditions[-1:].type")
_AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")
_lock = threading.Lock()


def _schema_file(group: str, version: str, kind: str) -> str:
    return f"{group}.{version}.{kind}.json.gz"


def _v1(kind: str, plural: str) -> KindInfo:
    return KindInfo(
        group=frameworks.GROUP,
        version=frameworks.VERSION,
        kind=kind,
        plural=plural,
        schema_file=_schema_file(frameworks.GROUP, frameworks.VERSION, kind),
        columns=(_STATE, _AGE),
    )


def _v2(kind: str, plural: str, *, namespaced: bool = True, state: bool = False) -> KindInfo:
    return KindInfo(
        group=TRAINER_GROUP,
        version=TRAINER_VERSION,
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        schema_file=_schema_file(TRAINER_GROUP, TRAINER_VERSION, kind),
        columns=(_STATE, _AGE) if state else (_AGE,),
    )


PYTORCHJOB = _v1("PyTorchJob", "pytorchjobs")
TFJOB = _v1("TFJob", "tfjobs")
XGBOOSTJOB = _v1("XGBoostJob", "xgboostjobs")
MPIJOB = _v1("MPIJob", "mpijobs")
TRAINJOB = _v2("TrainJob", "trainjobs", state=True)
TRAININGRUNTIME = _v2("TrainingRuntime", "trainingruntimes")
CLUSTERTRAININGRUNTIME = _v2("ClusterTrainingRuntime", "clustertrainingruntimes", namespaced=False)

V1_KINDS = (PYTORCHJOB, TFJOB, XGBOOSTJOB, MPIJOB)
V2_KINDS = (TRAINJOB, TRAININGRUNTIME, CLUSTERTRAININGRUNTIME)
ALL_KINDS = (*V1_KINDS, *V2_KINDS)


def schema_defaulter(info: KindInfo):  # type: ignore[no-untyped-def]
    """A defaulter applying the ``default`` values of ``info``'s schema (what the Kubernetes API
    server does for every CRD before webhooks run)."""

    def default(obj: Resource) -> None:
        if info.schema_file:
            apply_schema_defaults(obj, load_schema(info.schema_file))

    default.__name__ = f"schema_defaults_{info.kind}"
    return default


def register_kinds(registry: KindRegistry = REGISTRY) -> None:
    """Register the training kinds and their admission hooks in ``registry``; idempotent (a
    second call finds them registered and adds nothing)."""
    from flowyard.training import trainjob

    with _lock:
        for info in ALL_KINDS:
            _attach(registry, registry.ensure(info), trainjob)


_DEFAULTERS: dict[str, object] = {}


def _attach(registry: KindRegistry, info: KindInfo, trainjob: object) -> None:
    """Kind defaulting first, then the schema's defaults (Kubernetes applies schema defaults
    again after mutating webhooks, so fields a webhook adds get theirs too)."""
    if info.kind in frameworks.FRAMEWORKS:
        registry.add_defaulter(info.api_version, info.kind, default_v1_job)
        registry.add_validator(info.api_version, info.kind, validate_v1_job)
    else:
        hooks = trainjob.HOOKS[info.kind]  # type: ignore[attr-defined]
        for fn in hooks.get("defaulters", ()):
            registry.add_defaulter(info.api_version, info.kind, fn)
        for fn in hooks.get("validators", ()):
            registry.add_validator(info.api_version, info.kind, fn)
    if info.kind not in _DEFAULTERS:
        _DEFAULTERS[info.kind] = schema_defaulter(info)
    registry.add_defaulter(info.api_version, info.kind, _DEFAULTERS[info.kind])  # type: ignore[arg-type]
