"""The KServe kinds and their admission hooks, registered by :func:`register_kinds`.

Names, short names and printer columns are the upstream CRDs'. Each kind validates against its
CRD's ``openAPIV3Schema`` (``resources/schemas/serving.kserve.io.*``), then the InferenceService
gets KServe's webhook defaulting (``minReplicas`` 1, ``protocolVersion`` v1, batcher defaults) and
semantic validation with field paths (exactly one predictor implementation, replica bounds,
canary percent, logger URL, storageUri scheme). Runtime selection is not an admission check:
an unknown runtime or a format no runtime supports is reported in ``status`` (as KServe does).
"""

from __future__ import annotations

import threading
from typing import Any

from flowyard.errors import FieldCause
from flowyard.resources.meta import Resource
from flowyard.resources.registry import REGISTRY, KindInfo, KindRegistry, PrinterColumn

GROUP = "serving.kserve.io"
_AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")


def _info(version: str, kind: str, plural: str, short: tuple[str, ...], **kw: Any) -> KindInfo:
    return KindInfo(
        group=GROUP,
        version=version,
        kind=kind,
        plural=plural,
        short_names=short,
        schema_file=f"{GROUP}.{version}.{kind}.json.gz",
        **kw,
    )


_TRAFFIC = ".status.components.predictor.traffic"
INFERENCESERVICE = _info(
    "v1beta1",
    "InferenceService",
    "inferenceservices",
    ("isvc",),
    columns=(
        PrinterColumn("URL", ".status.url"),
        PrinterColumn("Ready", ".status.conditions[?(@.type=='Ready')].status"),
        PrinterColumn("Prev", f"{_TRAFFIC}[?(@.tag=='prev')].percent", "integer"),
        PrinterColumn("Latest", f"{_TRAFFIC}[?(@.latestRevision==true)].percent", "integer"),
        PrinterColumn("PrevRolledoutRevision", f"{_TRAFFIC}[?(@.tag=='prev')].revisionName"),
        PrinterColumn("LatestReadyRevision", f"{_TRAFFIC}[?(@.latestRevision==true)].revisionName"),
        _AGE,
    ),
)
_RUNTIME_COLUMNS = (
    PrinterColumn("Disabled", ".spec.disabled", "boolean"),
    PrinterColumn("ModelType", ".spec.supportedModelFormats[*].name"),
    PrinterColumn("Containers", ".spec.containers[*].name"),
    _AGE,
)
SERVINGRUNTIME = _info(
    "v1alpha1", "ServingRuntime", "servingruntimes", (), columns=_RUNTIME_COLUMNS
)
CLUSTERSERVINGRUNTIME = _info(
    "v1alpha1",
    "ClusterServingRuntime",
    "clusterservingruntimes",
    (),
    namespaced=False,
    columns=_RUNTIME_COLUMNS,
)
INFERENCEGRAPH = _info(
    "v1alpha1",
    "InferenceGraph",
    "inferencegraphs",
    ("ig",),
    columns=(
        PrinterColumn("URL", ".status.url"),
        PrinterColumn("Ready", ".status.conditions[?(@.type=='Ready')].status"),
        _AGE,
    ),
)
ALL_KINDS = (INFERENCESERVICE, SERVINGRUNTIME, CLUSTERSERVINGRUNTIME, INFERENCEGRAPH)

# predictor.<framework> forms KServe still accepts, and the model format each one means.
LEGACY_FRAMEWORKS = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "onnx": "onnx",
    "pytorch": "pytorch",
    "tensorflow": "tensorflow",
    "triton": "triton",
    "pmml": "pmml",
    "paddle": "paddle",
    "huggingface": "huggingface",
}
COMPONENTS = ("predictor", "transformer", "explainer")
_STORAGE_SCHEMES = ("gs://", "s3://", "pvc://", "file://", "https://", "http://", "hdfs://", "/")
_lock = threading.Lock()


def predictor_implementations(predictor: dict[str, Any]) -> list[str]:
    """The implementation fields set on a predictor (``model``, a framework, ``containers``)."""
    found = [f for f in ("model", *LEGACY_FRAMEWORKS) if predictor.get(f) is not None]
    if predictor.get("containers"):
        found.append("containers")
    return found


def default_isvc(obj: Resource) -> None:
    """KServe's defaulting webhook, for the fields flowyard uses."""
    spec = obj.setdefault("spec", {})
    for name in COMPONENTS:
        component = spec.get(name)
        if not isinstance(component, dict):
            continue
        if component.get("minReplicas") is None:
            component["minReplicas"] = 1
        batcher = component.get("batcher")
        if isinstance(batcher, dict):
            batcher.setdefault("maxBatchSize", 32)
            batcher.setdefault("maxLatency", 500)
        logger = component.get("logger")
        if isinstance(logger, dict):
            logger.setdefault("mode", "all")
    predictor = spec.get("predictor") or {}
    impls = predictor_implementations(predictor)
    if len(impls) == 1 and impls[0] not in ("containers",):
        model = predictor[impls[0]]
        if isinstance(model, dict):
            model.setdefault("protocolVersion", "v1")


def validate_isvc(new: Resource, old: Resource | None) -> list[FieldCause]:
    spec = new.get("spec") or {}
    causes: list[FieldCause] = []
    predictor = spec.get("predictor")
    if not isinstance(predictor, dict):
        return [_cause("spec.predictor", "Required value: an InferenceService needs a predictor")]
    impls = predictor_implementations(predictor)
    if len(impls) != 1:
        shown = ", ".join(impls) or "none"
        causes.append(
            _cause(
                "spec.predictor",
                "Invalid value: exactly one of model, a framework "
                f"({', '.join(LEGACY_FRAMEWORKS)}) or containers must be set; found: {shown}",
            )
        )
    elif impls[0] != "containers":
        causes.extend(_model_causes(predictor[impls[0]], f"spec.predictor.{impls[0]}"))
    for name in COMPONENTS:
        component = spec.get(name)
        if isinstance(component, dict):
            causes.extend(_component_causes(component, f"spec.{name}"))
    for name in ("transformer", "explainer"):
        component = spec.get(name)
        if isinstance(component, dict) and not component.get("containers"):
            causes.append(
                _cause(
                    f"spec.{name}.containers",
                    f"Required value: flowyard runs a {name} as a command on this host; give "
                    "containers[0].command (the image is not pulled)",
                )
            )
    return causes


def _model_causes(model: Any, path: str) -> list[FieldCause]:
    if not isinstance(model, dict):
        return []
    causes = []
    uri = model.get("storageUri")
    if uri is not None and not str(uri).startswith(_STORAGE_SCHEMES):
        causes.append(
            _cause(
                f"{path}.storageUri",
                f"Invalid value: {uri!r}: storageUri must start with one of "
                + ", ".join(_STORAGE_SCHEMES),
            )
        )
    if path.endswith(".model") and not (model.get("modelFormat") or {}).get("name"):
        causes.append(
            _cause(f"{path}.modelFormat.name", "Required value: the model format (e.g. sklearn)")
        )
    protocol = model.get("protocolVersion")
    if protocol not in (None, "v1", "v2", "grpc-v2", "grpc-v1"):
        causes.append(
            _cause(f"{path}.protocolVersion", f"Unsupported value: {protocol!r}: use v1 or v2")
        )
    return causes


def _component_causes(component: dict[str, Any], path: str) -> list[FieldCause]:
    causes = []
    low, high = component.get("minReplicas"), component.get("maxReplicas")
    if isinstance(low, int) and low < 0:
        causes.append(_cause(f"{path}.minReplicas", "Invalid value: must be >= 0"))
    if isinstance(low, int) and isinstance(high, int) and high and high < low:
        causes.append(
            _cause(
                f"{path}.maxReplicas",
                f"Invalid value: {high}: maxReplicas must be >= minReplicas ({low})",
            )
        )
    canary = component.get("canaryTrafficPercent")
    if canary is not None and not 0 <= int(canary) <= 100:
        causes.append(
            _cause(f"{path}.canaryTrafficPercent", f"Invalid value: {canary}: must be 0..100")
        )
    concurrency = component.get("containerConcurrency")
    if concurrency is not None and int(concurrency) < 0:
        causes.append(_cause(f"{path}.containerConcurrency", "Invalid value: must be >= 0"))
    logger = component.get("logger")
    if isinstance(logger, dict) and not str(logger.get("url") or "").startswith(
        ("http://", "https://")
    ):
        causes.append(
            _cause(f"{path}.logger.url", "Required value: an http(s):// URL of the event sink")
        )
    metric = component.get("scaleMetric")
    if metric in ("cpu", "memory"):
        causes.append(
            _cause(
                f"{path}.scaleMetric",
                f'Unsupported value: "{metric}": flowyard scales on requests; use '
                '"concurrency" or "rps"',
            )
        )
    return causes


def validate_runtime(new: Resource, old: Resource | None) -> list[FieldCause]:
    spec = new.get("spec") or {}
    causes = []
    if not spec.get("containers"):
        causes.append(_cause("spec.containers", "Required value: at least one container"))
    for i, fmt in enumerate(spec.get("supportedModelFormats") or []):
        if not fmt.get("name"):
            causes.append(_cause(f"spec.supportedModelFormats[{i}].name", "Required value"))
        if fmt.get("priority") is not None and not fmt.get("autoSelect"):
            causes.append(
                _cause(
                    f"spec.supportedModelFormats[{i}].priority",
                    "Invalid value: priority can only be set when autoSelect is true",
                )
            )
    return causes


_ROUTER_TYPES = ("Sequence", "Splitter", "Ensemble", "Switch")


def validate_graph(new: Resource, old: Resource | None) -> list[FieldCause]:
    """KServe's InferenceGraph webhook checks: a ``root`` node, one target per step, known
    ``nodeName`` targets without cycles, Splitter weights adding up to 100, unique step names,
    and conditions flowyard can evaluate."""
    nodes = (new.get("spec") or {}).get("nodes") or {}
    if "root" not in nodes:
        return [_cause("spec.nodes.root", "Required value: the graph starts at a node named root")]
    causes: list[FieldCause] = []
    for name, node in nodes.items():
        causes.extend(_node_causes(name, node, nodes))
    if not causes:
        causes.extend(_cycle_causes(nodes))
    return causes


def _node_causes(name: str, node: dict[str, Any], nodes: dict[str, Any]) -> list[FieldCause]:
    from flowyard.serving import graph_expr

    path = f"spec.nodes.{name}"
    causes: list[FieldCause] = []
    steps = node.get("steps") or []
    if not steps:
        causes.append(_cause(f"{path}.steps", "Required value: a node needs at least one step"))
    seen: set[str] = set()
    for i, step in enumerate(steps):
        spath = f"{path}.steps[{i}]"
        targets = [t for t in ("nodeName", "serviceName", "serviceUrl") if step.get(t)]
        if len(targets) != 1:
            causes.append(
                _cause(spath, "Invalid value: exactly one of nodeName, serviceName or serviceUrl")
            )
        if step.get("nodeName") and step["nodeName"] not in nodes:
            causes.append(
                _cause(f"{spath}.nodeName", f"Invalid value: no node {step['nodeName']!r}")
            )
        if step.get("name"):
            if step["name"] in seen:
                causes.append(_cause(f"{spath}.name", f"Duplicate value: {step['name']!r}"))
            seen.add(step["name"])
        if step.get("condition"):
            try:
                graph_expr.check(str(step["condition"]))
            except ValueError as exc:
                causes.append(_cause(f"{spath}.condition", f"Invalid value: {exc}"))
    if node.get("routerType") == "Splitter":
        total = sum(int(s.get("weight") or 0) for s in steps)
        if total != 100:
            causes.append(
                _cause(
                    f"{path}.steps", f"Invalid value: Splitter weights add up to {total}, not 100"
                )
            )
    return causes


def _cycle_causes(nodes: dict[str, Any]) -> list[FieldCause]:
    def visit(name: str, trail: tuple[str, ...]) -> list[FieldCause]:
        if name in trail:
            loop = " -> ".join((*trail, name))
            return [_cause(f"spec.nodes.{name}", f"Invalid value: the graph has a cycle: {loop}")]
        for step in nodes[name].get("steps") or []:
            if step.get("nodeName"):
                found = visit(step["nodeName"], (*trail, name))
                if found:
                    return found
        return []

    return visit("root", ())


def _cause(path: str, message: str) -> FieldCause:
    reason = "FieldValueRequired" if message.startswith("Required") else "FieldValueInvalid"
    return FieldCause(path, message, reason)


def register_kinds(registry: KindRegistry = REGISTRY) -> None:
    """Register the serving kinds and their hooks in ``registry``; idempotent."""
    with _lock:
        for info in ALL_KINDS:
            try:
                registry.get(info.api_version, info.kind)
            except Exception:  # NotFoundError: not there yet
                registry.register(info)
        registry.add_defaulter(INFERENCESERVICE.api_version, "InferenceService", default_isvc)
        registry.add_validator(INFERENCESERVICE.api_version, "InferenceService", validate_isvc)
        registry.add_validator(INFERENCEGRAPH.api_version, "InferenceGraph", validate_graph)
        for info in (SERVINGRUNTIME, CLUSTERSERVINGRUNTIME):
            registry.add_validator(info.api_version, info.kind, validate_runtime)
