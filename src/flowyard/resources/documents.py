"""Decoding untrusted YAML and JSON documents safely, for the API server and the CLI alike.

Kubernetes' rules, and protection against hostile input:

* a key repeated in one mapping is an error (``duplicate field "name"``), not "last one wins";
* YAML aliases may not expand a document beyond :data:`MAX_EXPANDED_NODES` values (the
  "billion laughs" attack: a few hundred bytes that expand to gigabytes when serialized);
* nesting deeper than Python can recurse through is an error, not a crash;
* only plain data types are built (``yaml.SafeLoader`` semantics; the C parser when present).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

from flowyard.errors import BadRequestError

MAX_EXPANDED_NODES = 1_000_000
# The C parser is ~40x faster, but its composer recurses on the C stack: deeply nested flow
# collections ("[[[[...") crash the process instead of raising. Documents with many flow brackets
# go to the pure-Python parser, which raises RecursionError instead. (Block nesting is bounded by
# indentation: the 3 MiB request limit allows only ~2,400 levels.)
_MAX_FLOW_BRACKETS_FOR_C = 2_000


class _DuplicateKeyCheck:
    """Mixin for a SafeLoader that refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: let PyYAML report it
                continue
            if duplicate:
                raise BadRequestError(
                    f'duplicate field "{key}" (line {key_node.start_mark.line + 1}): each key '
                    "may appear once in a mapping"
                )
            seen.add(key)
        return dict(super().construct_mapping(node, deep=deep))  # type: ignore[misc]


class _PyLoader(_DuplicateKeyCheck, yaml.SafeLoader):
    pass


class _CLoader(_DuplicateKeyCheck, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _loader(text: str | bytes) -> type[yaml.SafeLoader]:
    sample = text if isinstance(text, str) else text.decode("utf-8", "replace")
    brackets = sample.count("[") + sample.count("{")
    return _CLoader if brackets <= _MAX_FLOW_BRACKETS_FOR_C else _PyLoader


def _guarded(value: Any, what: str) -> Any:
    """``value`` if its alias-expanded size is bounded; BadRequestError otherwise."""
    sizes: dict[int, int] = {}

    def size(item: Any) -> int:
        if not isinstance(item, dict | list):
            return 1
        key = id(item)
        if key not in sizes:
            children = item.values() if isinstance(item, dict) else item
            sizes[key] = 1 + sum(size(child) for child in children)
            if sizes[key] > MAX_EXPANDED_NODES:
                raise BadRequestError(
                    f"{what} expands to more than {MAX_EXPANDED_NODES} values through YAML "
                    "aliases; write the data out instead of referencing it"
                )
        return sizes[key]

    try:
        size(value)
    except RecursionError:
        raise BadRequestError(f"{what} is nested too deeply to process") from None
    return value


def load_yaml_documents(text: str | bytes, what: str = "the document") -> Iterator[Any]:
    """Every document in a (multi-document) YAML stream, checked as described above."""
    try:
        for doc in yaml.load_all(text, Loader=_loader(text)):  # SafeLoaders: plain data only
            yield _guarded(doc, what)
    except yaml.YAMLError as exc:
        raise BadRequestError(f"{what} is not valid YAML: {exc}") from None
    except RecursionError:
        raise BadRequestError(f"{what} is nested too deeply to parse") from None


def load_yaml(text: str | bytes, what: str = "the document") -> Any:
    """The single YAML document in ``text`` (None for an empty stream)."""
    docs = list(load_yaml_documents(text, what))
    if len(docs) > 1:
        raise BadRequestError(f"{what} holds {len(docs)} YAML documents; send one object")
    return docs[0] if docs else None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadRequestError(f'duplicate field "{key}": each key may appear once in an object')
        out[key] = value
    return out


def load_json(raw: str | bytes, what: str = "the document") -> Any:
    """A JSON document, refusing duplicate keys and unbounded nesting."""
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise BadRequestError(f"{what} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequestError(f"{what} is nested too deeply to parse") from None
