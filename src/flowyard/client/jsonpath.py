"""The JSONPath subset of CRD ``additionalPrinterColumns``: ``.a.b``, ``[0]``, ``[-1:]``,
``[*]`` and ``[?(@.key==VALUE)]`` filters, where VALUE is a quoted string (``"v"`` or ``'v'``)
or an unquoted JSON literal (``true``, ``false``, ``null``, a number) compared by type, as
kubectl does (``[?(@.latestRevision==true)]`` matches the boolean, not the string "true").
Returns every match, in order."""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+)|\[([^\]]*)\]")
_FILTER = re.compile(r"""^\?\(@\.([\w.\-]+)\s*==\s*("[^"]*"|'[^']*'|[^"'()\s]+)\s*\)$""")
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}
_MISSING = object()


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
        field, literal = filt.groups()
        wanted = _literal(literal)
        if wanted is _MISSING:
            return []
        return [item for item in value if _same(_get_dotted(item, field), wanted)]
    if ":" in index:
        start, _, stop = index.partition(":")
        return value[int(start) if start else None : int(stop) if stop else None]
    try:
        return [value[int(index)]]
    except (ValueError, IndexError):
        return []


def _literal(text: str) -> Any:
    """The filter's right-hand side: a quoted string or a JSON literal (_MISSING if neither)."""
    if text[0] in "\"'":
        return text[1:-1]
    if text in _LITERALS:
        return _LITERALS[text]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return _MISSING


def _same(actual: Any, wanted: Any) -> bool:
    # bool is an int in Python: 1 must not match true, nor true match 1
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return isinstance(actual, bool) and isinstance(wanted, bool) and actual == wanted
    return actual is not _MISSING and bool(actual == wanted)


def _get_dotted(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING  # a missing key matches nothing, not even null
        value = value[part]
    return value
