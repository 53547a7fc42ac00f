"""Defaulting and semantic validation of ``batch/v1 Job``, as the Kubernetes API server does
(plus the one rule flowyard adds: a container must say what to run, since images are not
pulled)."""

from __future__ import annotations

from typing import Any

from flowyard.errors import FieldCause
from flowyard.resources.kinds import JOB
from flowyard.resources.meta import Resource
from flowyard.resources.registry import REGISTRY

_IMMUTABLE = ("template", "completions", "completionMode", "selector")
_SUPPORTED_FIELD_REFS = {"metadata.name", "metadata.namespace", "metadata.uid"}


def default_job(obj: Resource) -> None:
    spec = obj.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    pod = spec.get("template", {}).get("spec", {})
    for container in pod.get("containers") or []:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("imagePullPolicy", "IfNotPresent")


def validate_job(new: Resource, old: Resource | None) -> list[FieldCause]:
    spec = new.get("spec") or {}
    causes: list[FieldCause] = []
    pod = spec["template"]["spec"]
    policy = pod.get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        shown = f'"{policy}"' if policy else "Always (the pod default)"
        causes.append(
            FieldCause(
                "spec.template.spec.restartPolicy",
                f'Unsupported value: {shown}: supported values: "OnFailure", "Never" '
                "(set restartPolicy: Never or OnFailure in the Job's pod template)",
                "FieldValueNotSupported",
            )
        )
    first = pod["containers"][0]
    if not first.get("command") and not first.get("args"):
        causes.append(
            FieldCause(
                "spec.template.spec.containers[0].command",
                "Required value: flowyard runs the container's command on this host and does not "
                "pull images, so the command to run must be given (command and/or args)",
                "FieldValueRequired",
            )
        )
    causes.extend(_env_causes(pod["containers"]))
    if spec.get("completionMode") == "Indexed" and spec.get("completions") is None:
        causes.append(
            FieldCause(
                "spec.completions",
                "Required value: when completion mode is Indexed",
                "FieldValueRequired",
            )
        )
    if old is not None:
        old_spec = old.get("spec") or {}
        for field in _IMMUTABLE:
            if field in old_spec and old_spec.get(field) != spec.get(field):
                causes.append(
                    FieldCause(
                        f"spec.{field}", "Invalid value: field is immutable", "FieldValueForbidden"
                    )
                )
    return causes


def _env_causes(containers: list[dict[str, Any]]) -> list[FieldCause]:
    causes = []
    for ci, container in enumerate(containers):
        for ei, env in enumerate(container.get("env") or []):
            source = env.get("valueFrom")
            if not source:
                continue
            ref = (source.get("fieldRef") or {}).get("fieldPath")
            if ref not in _SUPPORTED_FIELD_REFS:
                causes.append(
                    FieldCause(
                        f"spec.template.spec.containers[{ci}].env[{ei}].valueFrom",
                        "Unsupported value: flowyard resolves only fieldRef "
                        f"{', '.join(sorted(_SUPPORTED_FIELD_REFS))}; set `value` instead",
                        "FieldValueNotSupported",
                    )
                )
    return causes


def register() -> None:
    """Attach Job defaulting and validation to the registry (idempotent)."""
    REGISTRY.add_defaulter(JOB.api_version, JOB.kind, default_job)
    REGISTRY.add_validator(JOB.api_version, JOB.kind, validate_job)
