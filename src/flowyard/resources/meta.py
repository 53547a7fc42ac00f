"""Object metadata: names, labels, timestamps and the checks Kubernetes applies to them.

A resource is a plain JSON-shaped dict ``{apiVersion, kind, metadata, spec, status}`` (Kubernetes'
"unstructured" form); these helpers read and check its ``metadata`` without copying it.
"""

from __future__ import annotations

import difflib
import re
import secrets
import string
import uuid
from datetime import UTC, datetime
from typing import Any

from flowyard.errors import FieldCause

Resource = dict[str, Any]
"""A resource object: ``{apiVersion, kind, metadata, spec, status}``."""

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName alphabet
MAX_ANNOTATIONS_BYTES = 256 * 1024

DEFAULT_NAMESPACE = "default"


def now_iso() -> str:
    """The current UTC time as Kubernetes writes it (RFC 3339, seconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso_micro() -> str:
    """The current UTC time with microseconds (``MicroTime``, used by Events and leases)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def new_uid() -> str:
    return str(uuid.uuid4())


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(length))


def meta(obj: Resource) -> dict[str, Any]:
    """``obj['metadata']``, created empty if missing."""
    value = obj.setdefault("metadata", {})
    if not isinstance(value, dict):
        raise TypeError("metadata must be an object")
    return value


def name_of(obj: Resource) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def namespace_of(obj: Resource) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def labels_of(obj: Resource) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels if isinstance(labels, dict) else {}


def is_rfc1123_label(value: str) -> bool:
    return len(value) <= 63 and bool(DNS1123_LABEL.match(value))


def is_rfc1123_subdomain(value: str) -> bool:
    return len(value) <= 253 and bool(DNS1123_SUBDOMAIN.match(value))


def name_problem(value: object, *, max_length: int = 253) -> str | None:
    """Why ``value`` is not a valid object name (RFC 1123 subdomain), or None if it is."""
    if not isinstance(value, str) or not value:
        return "a name is required"
    if len(value) > max_length:
        return f"must be no more than {max_length} characters"
    if not DNS1123_SUBDOMAIN.match(value):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return None


def label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and not is_rfc1123_subdomain(prefix):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (at most 63 characters)"
        )
    return None


def label_value_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return (
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character "
            "(at most 63 characters)"
        )
    return None


def validate_metadata(
    obj: Resource, *, namespaced: bool, max_name_length: int = 253
) -> list[FieldCause]:
    """The problems with ``obj['metadata']`` that Kubernetes' generic validation reports."""
    causes: list[FieldCause] = []
    md = obj.get("metadata")
    if not isinstance(md, dict):
        return [
            FieldCause(
                "metadata", "Required value: metadata must be an object", "FieldValueRequired"
            )
        ]
    causes.extend(_unknown_metadata_fields(md))
    name, generate = md.get("name"), md.get("generateName")
    if not name and not generate:
        causes.append(
            FieldCause(
                "metadata.name",
                "Required value: name or generateName is required",
                "FieldValueRequired",
            )
        )
    elif name:
        problem = name_problem(name, max_length=max_name_length)
        if problem:
            causes.append(FieldCause("metadata.name", f"Invalid value: {name!r}: {problem}"))
    elif not isinstance(generate, str) or name_problem(
        generate + "x" * 5, max_length=max_name_length
    ):
        causes.append(
            FieldCause(
                "metadata.generateName",
                f"Invalid value: {generate!r}: must be a valid "
                "name prefix (lowercase letters, digits, '-' and '.')",
            )
        )
    ns = md.get("namespace")
    if namespaced and ns is not None and not (isinstance(ns, str) and is_rfc1123_label(ns)):
        causes.append(
            FieldCause(
                "metadata.namespace",
                f"Invalid value: {ns!r}: a namespace must "
                "be a lowercase RFC 1123 label (at most 63 characters)",
            )
        )
    causes.extend(_string_map_causes(md, "labels", check_values=True))
    causes.extend(_string_map_causes(md, "annotations", check_values=False))
    for key in ("finalizers",):
        value = md.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            causes.append(FieldCause(f"metadata.{key}", "Invalid value: must be a list of strings"))
    owners = md.get("ownerReferences")
    if owners is not None:
        causes.extend(_owner_causes(owners))
    return causes


OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
})  # fmt: skip


def _unknown_metadata_fields(md: dict[str, Any]) -> list[FieldCause]:
    causes = []
    for key in sorted(set(md) - OBJECT_META_FIELDS, key=str):
        close = difflib.get_close_matches(str(key), sorted(OBJECT_META_FIELDS), n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        causes.append(
            FieldCause("metadata", f'unknown field "metadata.{key}"{hint}', "FieldValueUnknown")
        )
    return causes


def _string_map_causes(md: dict[str, Any], field: str, *, check_values: bool) -> list[FieldCause]:
    value = md.get(field)
    if value is None:
        return []
    if not isinstance(value, dict):
        return [FieldCause(f"metadata.{field}", "Invalid value: must be a map of string to string")]
    causes = []
    size = 0
    for key, item in value.items():
        path = f"metadata.{field}[{key}]"
        problem = label_key_problem(str(key))
        if problem:
            causes.append(FieldCause(path, f"Invalid value: {key!r}: {problem}"))
        if not isinstance(item, str):
            causes.append(FieldCause(path, f"Invalid value: {item!r}: must be a string"))
            continue
        size += len(key) + len(item)
        if check_values and (vp := label_value_problem(item)):
            causes.append(FieldCause(path, f"Invalid value: {item!r}: {vp}"))
    if field == "annotations" and size > MAX_ANNOTATIONS_BYTES:
        causes.append(
            FieldCause(
                "metadata.annotations",
                "Too long: must have at most 262144 bytes",
                "FieldValueTooLong",
            )
        )
    return causes


def _owner_causes(owners: object) -> list[FieldCause]:
    if not isinstance(owners, list):
        return [FieldCause("metadata.ownerReferences", "Invalid value: must be a list")]
    causes = []
    for i, ref in enumerate(owners):
        path = f"metadata.ownerReferences[{i}]"
        if not isinstance(ref, dict):
            causes.append(FieldCause(path, "Invalid value: must be an object"))
            continue
        for key in ("apiVersion", "kind", "name", "uid"):
            if not isinstance(ref.get(key), str) or not ref.get(key):
                causes.append(FieldCause(f"{path}.{key}", "Required value", "FieldValueRequired"))
    return causes


def owner_reference(owner: Resource, *, controller: bool = True) -> dict[str, Any]:
    """An ``ownerReference`` pointing at ``owner`` (which must have been stored: it needs a uid)."""
    md = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": md["name"],
        "uid": md["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def is_safe_path_segment(value: str) -> bool:
    """True if ``value`` can be used as one directory name (no separators, no dot names)."""
    allowed = set(string.ascii_letters + string.digits + "-_.")
    return bool(value) and value not in {".", ".."} and set(value) <= allowed
