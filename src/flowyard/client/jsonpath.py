"""The JSONPath subset of CRD ``additionalPrinterColumns``: ``.a.b``, ``[0]``, ``[-1:]``,
``[*]`` and ``[?(@.key=="value")]`` filters. Returns every match, in order."""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+)|\[([^\]]*)\]")
_FILTER = re.compile(r"""^\?\(@\.([\w.\-]+)\s*==\s*["']?([^"']*)["']?\)$""")


def find(obj: Any, path: str) -> list[Any]:
    values = [obj]
    for match in _TOKEN.finditer(path.strip()):
        key, index = match.group(1), match.group(2)
        values = [v for value in values for v in _step(value, key, index)]
    return values


def _step(value: Any, key: str | None, index: str | None) -> list[Any]:
    if key is not None:
        return [value[key]] if isinstance(value, dict) and key in value else []
    if not isinstance(value, list) or index is None:
        return []
    index = index.strip()
    if index == "*":
        return list(value)
    if index.startswith("?"):
        filt = _FILTER.match(index)
        if not filt:
            return []
        field, wanted = filt.groups()
        return [item for item in value if _get_dotted(item, field) == wanted]
    if ":" in index:
        start, _, stop = index.partition(":")
        return value[int(start) if start else None : int(stop) if stop else None]
    try:
        return [value[int(index)]]
    except (ValueError, IndexError):
        return []


def _get_dotted(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
