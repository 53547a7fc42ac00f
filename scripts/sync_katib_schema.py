#!/usr/bin/env python3
"""Write flowyard's packaged Katib schemas from Katib's OpenAPI (swagger) document.

Usage: python scripts/sync_katib_schema.py SWAGGER_JSON [OUT_DIR]

Reads the ``definitions`` of the Katib ``v1beta1`` swagger file and writes one self-contained
JSON schema per kind (``katib.Experiment.json``, ``katib.Trial.json``, ``katib.Suggestion.json``)
into OUT_DIR (default: ``src/flowyard/resources/schemas``). Every ``$ref`` is inlined; the few
Kubernetes types the swagger file refers to without defining are replaced by the structural
schema Kubernetes uses for them. Descriptions, defaults, formats and list-type markers are
dropped: only structure and types are kept (defaulting is done by flowyard.tuning.defaults).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

KINDS = {
    "Experiment": "v1beta1.Experiment",
    "Trial": ".v1beta1.Trial",
    "Suggestion": ".v1beta1.Suggestion",
}

_OPEN_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
# Kubernetes types referenced but not defined in Katib's swagger file.
EXTERNAL = {
    "v1.ObjectMeta": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "v1.ListMeta": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "v1.Time": {"type": "string"},
    "v1.Container": _OPEN_OBJECT,
    "v1.HTTPGetAction": _OPEN_OBJECT,
    "v1.unstructured.Unstructured": _OPEN_OBJECT,
}
_DROP = {"description", "default", "format", "x-kubernetes-list-map-keys", "x-kubernetes-list-type"}
_MAX_DEPTH = 40


def _resolve(node: Any, definitions: dict[str, Any], depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError("schema nests deeper than expected (a $ref cycle?)")
    if isinstance(node, list):
        return [_resolve(item, definitions, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = str(node["$ref"]).removeprefix("#/definitions/")
        if name in EXTERNAL:
            return dict(EXTERNAL[name])
        if name not in definitions:
            raise KeyError(f"$ref {name} is neither defined nor a known Kubernetes type")
        return _resolve(definitions[name], definitions, depth + 1)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {k: _resolve(v, definitions, depth + 1) for k, v in value.items()}
        else:
            out[key] = _resolve(value, definitions, depth + 1)
    return out


def build(swagger: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One schema per kind, keyed by the output file name."""
    definitions = swagger["definitions"]
    out: dict[str, dict[str, Any]] = {}
    for kind, ref in KINDS.items():
        schema = _resolve(definitions[ref], definitions)
        schema["required"] = ["spec"]
        out[f"katib.{kind}.json"] = schema
    return out


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    swagger = json.loads(Path(argv[1]).read_text())
    out_dir = (
        Path(argv[2])
        if len(argv) == 3
        else (Path(__file__).resolve().parent.parent / "src" / "flowyard" / "resources" / "schemas")
    )
    for filename, schema in build(swagger).items():
        path = out_dir / filename
        path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
