"""Picking the ServingRuntime of a predictor, as KServe does, and the shipped runtimes.

* ``predictor.model.runtime`` names a runtime explicitly: a ServingRuntime in the namespace,
  else a ClusterServingRuntime. It must exist, not be disabled, and support the model format
  (name, and version when the model gives one) and the protocol version.
* Otherwise the candidates are the enabled runtimes with a ``supportedModelFormats`` entry of the
  model's format that has ``autoSelect: true`` and supports the protocol (runtimes that list no
  ``protocolVersions`` support ``v1``). Namespace runtimes come before cluster runtimes; within
  each, the higher ``priority`` of the matching entry wins (unset = 0); then name order.
* A legacy ``predictor.sklearn|xgboost|...`` is the format of that name.

Failures raise :class:`NoSupportingRuntime` whose message goes into ``status.modelStatus``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from importlib import resources as importlib_resources
from typing import Any

import yaml

from flowyard.errors import AlreadyExistsError
from flowyard.resources.meta import Resource
from flowyard.serving.kinds import CLUSTERSERVINGRUNTIME, LEGACY_FRAMEWORKS, SERVINGRUNTIME


class NoSupportingRuntime(Exception):
    """No runtime can serve the predictor; ``reason`` is KServe's failure reason."""

    def __init__(self, message: str, reason: str = "NoSupportingRuntime") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ModelRef:
    """What runtime selection needs from a predictor."""

    field: str  # "model" or the legacy framework field
    spec: dict[str, Any]
    format_name: str
    format_version: str | None
    runtime: str | None
    protocol: str


@dataclass(frozen=True)
class RuntimeChoice:
    name: str
    kind: str
    spec: dict[str, Any]


def model_ref(predictor: dict[str, Any]) -> ModelRef | None:
    """The model of a predictor (None for ``containers``-only predictors)."""
    if isinstance(predictor.get("model"), dict):
        model = predictor["model"]
        fmt = model.get("modelFormat") or {}
        return ModelRef(
            "model",
            model,
            str(fmt.get("name") or ""),
            fmt.get("version"),
            model.get("runtime"),
            str(model.get("protocolVersion") or "v1"),
        )
    for field, fmt_name in LEGACY_FRAMEWORKS.items():
        if isinstance(predictor.get(field), dict):
            model = predictor[field]
            return ModelRef(
                field, model, fmt_name, None, None, str(model.get("protocolVersion") or "v1")
            )
    return None


def _protocols(spec: dict[str, Any]) -> list[str]:
    return list(spec.get("protocolVersions") or ["v1"])


def _matching_format(spec: dict[str, Any], ref: ModelRef, auto: bool) -> dict[str, Any] | None:
    for fmt in spec.get("supportedModelFormats") or []:
        if str(fmt.get("name", "")).lower() != ref.format_name.lower():
            continue
        if auto and not fmt.get("autoSelect"):
            continue
        if ref.format_version is not None and not _version_matches(
            str(ref.format_version), fmt.get("version")
        ):
            continue
        return dict(fmt)
    return None


def _version_matches(wanted: str, offered: object) -> bool:
    if offered is None:
        return False
    offered = str(offered)
    return wanted == offered or wanted.split(".")[0] == offered.split(".")[0]


def select_runtime(
    ref: ModelRef, namespaced: list[Resource], cluster: list[Resource]
) -> RuntimeChoice:
    if ref.runtime:
        return _explicit(ref, namespaced, cluster)
    ranked: list[tuple[int, int, str, RuntimeChoice]] = []
    for scope, runtimes in ((0, namespaced), (1, cluster)):
        for rt in runtimes:
            spec = rt.get("spec") or {}
            if spec.get("disabled") or ref.protocol not in _protocols(spec):
                continue
            fmt = _matching_format(spec, ref, auto=True)
            if fmt is None:
                continue
            name = rt["metadata"]["name"]
            choice = RuntimeChoice(name, rt["kind"], spec)
            ranked.append((scope, -int(fmt.get("priority") or 0), name, choice))
    if not ranked:
        version = f", version: {ref.format_version}" if ref.format_version else ""
        raise NoSupportingRuntime(
            f"No runtime found to support predictor with model type: {{name: {ref.format_name}"
            f"{version}}} and protocol version: {ref.protocol}; flowyard ships runtimes for "
            "sklearn, xgboost, lightgbm, onnx, pytorch (TorchScript) and custom"
        )
    ranked.sort(key=lambda item: item[:3])
    return ranked[0][3]


def _explicit(ref: ModelRef, namespaced: list[Resource], cluster: list[Resource]) -> RuntimeChoice:
    found = [r for r in namespaced if r["metadata"]["name"] == ref.runtime] or [
        r for r in cluster if r["metadata"]["name"] == ref.runtime
    ]
    if not found:
        raise NoSupportingRuntime(
            f"No ServingRuntimes or ClusterServingRuntimes with the name: {ref.runtime}"
        )
    rt = found[0]
    spec = rt.get("spec") or {}
    if spec.get("disabled"):
        raise NoSupportingRuntime(f"Runtime {ref.runtime} is disabled")
    if _matching_format(spec, ref, auto=False) is None:
        raise NoSupportingRuntime(
            f"Specified runtime {ref.runtime} does not support specified framework/version "
            f"({ref.format_name} {ref.format_version or ''})".rstrip()
        )
    if ref.protocol not in _protocols(spec):
        raise NoSupportingRuntime(
            f"Specified runtime {ref.runtime} does not support specified protocol version "
            f"{ref.protocol} (supports {', '.join(_protocols(spec))})"
        )
    return RuntimeChoice(ref.runtime or "", rt["kind"], spec)


def runtimes_for(store: Any, namespace: str) -> tuple[list[Resource], list[Resource]]:
    """The ServingRuntimes of ``namespace`` and every ClusterServingRuntime."""
    return (
        list(store.list(SERVINGRUNTIME, namespace).items),
        list(store.list(CLUSTERSERVINGRUNTIME, None).items),
    )


def builtin_runtimes() -> list[Resource]:
    data = importlib_resources.files("flowyard.serving").joinpath(
        "data/cluster-serving-runtimes.yaml"
    )
    return [d for d in yaml.safe_load_all(data.read_text()) if d]


def ensure_builtin_runtimes(store: Any) -> list[str]:
    """Admit and create each shipped ClusterServingRuntime that is not stored yet."""
    from flowyard.resources.admission import admit

    created = []
    for runtime in builtin_runtimes():
        admit(runtime)
        with contextlib.suppress(AlreadyExistsError):
            store.create(runtime)
            created.append(runtime["metadata"]["name"])
    return created


__all__ = [
    "ModelRef",
    "NoSupportingRuntime",
    "RuntimeChoice",
    "ensure_builtin_runtimes",
    "model_ref",
    "select_runtime",
]
