"""Reading manifests for ``apply -f`` / ``delete -f``: files, directories (``.yaml``, ``.yml``,
``.json``, sorted) or ``-`` for stdin; multi-document YAML and ``kind: List``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flowyard.errors import BadRequestError
from flowyard.resources.documents import load_yaml_documents

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
            docs = list(load_yaml_documents(text, name))
        except BadRequestError as exc:
            raise BadRequestError(f"error parsing {exc.message}") from None
        for index, doc in enumerate(docs):
            if doc is None:
                continue
            where = f"{name}#{index + 1}" if len(docs) > 1 else name
            is_list = isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List")
            if is_list and isinstance(doc.get("items"), list):
                out.extend(
                    (f"{where}[{i}]", _checked(item, f"{where}[{i}]"))
                    for i, item in enumerate(doc["items"])
                )
            else:
                out.append((where, _checked(doc, where)))
    return out


def _checked(doc: Any, where: str) -> dict[str, Any]:
    """``doc`` if it can be sent as an object: a mapping whose metadata is a mapping."""
    if not isinstance(doc, dict):
        raise BadRequestError(
            f"{where}: a manifest must be a mapping with apiVersion, kind and "
            f"metadata, not a {type(doc).__name__}"
        )
    if not isinstance(doc.get("metadata", {}), dict):
        raise BadRequestError(
            f"{where}: metadata must be a mapping (name, namespace, labels, "
            f"...), not a {type(doc['metadata']).__name__}"
        )
    return doc
