"""Reading manifests for ``apply -f`` / ``delete -f``: files, directories (``.yaml``, ``.yml``,
``.json``, sorted) or ``-`` for stdin; multi-document YAML and ``kind: List``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from flowyard.errors import BadRequestError

_SUFFIXES = (".yaml", ".yml", ".json")


def _files(source: str) -> Iterator[tuple[str, str]]:
    if source == "-":
        yield "<stdin>", sys.stdin.read()
        return
    path = Path(source)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
        if not found:
            raise BadRequestError(f"no .yaml, .yml or .json files in the directory {source}")
        for file in found:
            yield str(file), file.read_text()
        return
    if not path.exists():
        raise BadRequestError(f"the path {source} does not exist")
    try:
        yield source, path.read_text()
    except UnicodeDecodeError:
        raise BadRequestError(f"{source} is not a text file (expected YAML or JSON)") from None


def load_manifests(sources: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Every object in ``sources`` with where it came from (``file#document``)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, text in (item for source in sources for item in _files(source)):
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise BadRequestError(f"error parsing {name}: {exc}") from None
        for index, doc in enumerate(docs):
            if doc is None:
                continue
            where = f"{name}#{index + 1}" if len(docs) > 1 else name
            if not isinstance(doc, dict):
                raise BadRequestError(
                    f"{where}: a manifest must be a mapping with apiVersion, "
                    f"kind and metadata, not a {type(doc).__name__}"
                )
            if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
                out.extend((f"{where}[{i}]", item) for i, item in enumerate(doc["items"]))
            else:
                out.append((where, doc))
    return out
