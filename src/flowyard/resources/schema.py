"""Schema validation against upstream ``openAPIV3Schema`` documents.

Schemas ship inside the package under ``resources/schemas/`` (extracted from the upstream CRDs by
``scripts/sync_schemas.py``; the kinds Kubernetes itself defines, such as ``batch/v1 Job``, have a
schema written here). They are loaded on first use and cached.

Kubernetes semantics kept: ``nullable``, ``x-kubernetes-preserve-unknown-fields``,
``x-kubernetes-int-or-string``, and strict field validation (an unknown field is an error that
names it and suggests the closest known field), which is what ``kubectl apply`` does by default.
"""

from __future__ import annotations

import copy
import difflib
import gzip
import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources as importlib_resources
from typing import Any

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from flowyard.errors import FieldCause

_SCHEMA_PACKAGE = "flowyard.resources.schemas"
_MAX_VALUE_REPR = 80


@lru_cache(maxsize=64)
def load_schema(filename: str) -> dict[str, Any]:
    """The schema in ``resources/schemas/<filename>`` (``.json``, ``.json.gz`` or ``.yaml``)."""
    data = importlib_resources.files(_SCHEMA_PACKAGE).joinpath(filename).read_bytes()
    if filename.endswith(".gz"):
        data = gzip.decompress(data)
    loaded = yaml.safe_load(data) if filename.endswith((".yaml", ".yml")) else json.loads(data)
    if not isinstance(loaded, dict):
        raise ValueError(f"schema {filename} is not an object")
    return loaded


@lru_cache(maxsize=64)
def _validator(filename: str) -> Draft7Validator:
    schema = _kubernetes_to_jsonschema(copy.deepcopy(load_schema(filename)), root=True)
    return Draft7Validator(schema)


def validate(obj: dict[str, Any], filename: str) -> list[FieldCause]:
    """Every schema problem of ``obj``, each naming its field path and the bad value."""
    errors = sorted(_validator(filename).iter_errors(obj), key=lambda e: list(e.absolute_path))
    causes: list[FieldCause] = []
    for error in _leaf_errors(errors):
        cause = _cause(error)
        if cause not in causes:
            causes.append(cause)
    return causes


def _leaf_errors(errors: Iterable[ValidationError]) -> Iterable[ValidationError]:
    """anyOf/oneOf errors are reported by their most specific branch."""
    for error in errors:
        if error.validator in ("anyOf", "oneOf") and error.context:
            best = max(error.context, key=lambda e: len(e.absolute_path))
            if len(best.absolute_path) > len(error.absolute_path):
                yield best
                continue
        yield error


def field_path(parts: Iterable[object]) -> str:
    """``['spec', 'containers', 0, 'image']`` -> ``spec.containers[0].image``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def short_repr(value: object) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else json.dumps(value)
    return text if len(text) <= _MAX_VALUE_REPR else text[: _MAX_VALUE_REPR - 3] + "..."


def _cause(error: ValidationError) -> FieldCause:
    path = field_path(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties":
        extra = _unknown_fields(error)
        known = sorted((error.schema.get("properties") or {}).keys())
        names = []
        for name in extra:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            names.append(f'unknown field "{field_path([*error.absolute_path, name])}"{hint}')
        return FieldCause(path or "<root>", "; ".join(names), "FieldValueUnknown")
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in str(error.message) else ""
        return FieldCause(
            field_path([*error.absolute_path, missing]) if missing else path,
            "Required value",
            "FieldValueRequired",
        )
    value = short_repr(error.instance)
    if kind == "type":
        expected = error.validator_value
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        return FieldCause(
            path,
            f"Invalid value: {value}: {path} in body must be of type {wanted}",
            "FieldValueTypeInvalid",
        )
    if kind == "enum":
        options = ", ".join(short_repr(v) for v in error.validator_value)
        return FieldCause(
            path,
            f"Unsupported value: {value}: supported values: {options}",
            "FieldValueNotSupported",
        )
    return FieldCause(
        path or "<root>",
        f"Invalid value: {value}: {error.message}"
        if len(str(error.message)) < 200
        else f"Invalid value: {value}: {kind}",
    )


def _unknown_fields(error: ValidationError) -> list[str]:
    props = set((error.schema.get("properties") or {}).keys())
    instance = error.instance if isinstance(error.instance, dict) else {}
    return sorted(k for k in instance if k not in props)


def _kubernetes_to_jsonschema(node: Any, *, root: bool = False) -> Any:
    """Rewrite Kubernetes structural-schema extensions into plain JSON Schema, in place."""
    if isinstance(node, list):
        return [_kubernetes_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    for key, value in list(node.items()):
        if key in ("properties", "patternProperties", "definitions"):
            node[key] = {k: _kubernetes_to_jsonschema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "anyOf", "allOf", "oneOf"):
            node[key] = _kubernetes_to_jsonschema(value)
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"] if isinstance(node["type"], str) else node["type"]
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
        node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in node and not preserve and "additionalProperties" not in node:
        node["additionalProperties"] = False
    if root:
        props = node.setdefault("properties", {})
        # metadata is checked by resources.meta with Kubernetes' own rules; apiVersion/kind by the
        # registry; status is written by controllers and not validated on user input.
        for key in ("metadata", "apiVersion", "kind", "status"):
            props[key] = {}
    return node
