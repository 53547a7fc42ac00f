"""Admission: the checks every object passes before it is stored.

Order, as in Kubernetes: kind lookup, generic metadata rules, the kind's schema, defaulting, then
the kind's semantic validation. All problems found in one step are reported together.
"""

from __future__ import annotations

from flowyard.errors import FieldCause, InvalidError
from flowyard.resources import schema
from flowyard.resources.meta import Resource, name_of, validate_metadata
from flowyard.resources.registry import REGISTRY, KindInfo, KindRegistry


def admit(obj: object, old: Resource | None = None, registry: KindRegistry = REGISTRY) -> KindInfo:
    """Validate and default ``obj`` in place; return its kind or raise InvalidError/NotFoundError.

    ``old`` is the stored object when this is an update (validators may forbid changes).
    """
    if not isinstance(obj, dict):
        raise InvalidError(
            "a resource must be a mapping with apiVersion, kind and metadata, "
            f"not {type(obj).__name__}",
            causes=[FieldCause("<root>", "Invalid value: must be an object")],
        )
    causes = [
        FieldCause(
            key,
            f"Required value: {key} must be set (a string, e.g. {example})",
            "FieldValueRequired",
        )
        for key, example in (("apiVersion", '"batch/v1"'), ("kind", '"Job"'))
        if not isinstance(obj.get(key), str) or not obj.get(key)
    ]
    if causes:
        raise InvalidError(
            "object is invalid: " + "; ".join(_fmt(c) for c in causes), causes=causes
        )
    info = registry.get(obj["apiVersion"], obj["kind"])
    _raise_if(info, obj, validate_metadata(obj, namespaced=info.namespaced))
    if info.schema_file:
        _raise_if(info, obj, schema.validate(obj, info.schema_file))
    for defaulter in info.defaulters:
        defaulter(obj)
    problems: list[FieldCause] = []
    for validator in info.validators:
        problems.extend(validator(obj, old))
    _raise_if(info, obj, problems)
    return info


def _fmt(cause: FieldCause) -> str:
    return f"{cause.field}: {cause.message}"


def _raise_if(info: KindInfo, obj: Resource, causes: list[FieldCause]) -> None:
    if not causes:
        return
    qualified = f"{info.kind}.{info.group}" if info.group else info.kind
    name = name_of(obj) or (obj.get("metadata") or {}).get("generateName") or ""
    listed = "; ".join(_fmt(c) for c in causes)
    raise InvalidError(
        f'{qualified} "{name}" is invalid: {listed}',
        causes=causes,
        details={"name": name, "group": info.group, "kind": info.kind},
    )
