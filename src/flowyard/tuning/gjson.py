"""Katib's trial success and failure conditions: a subset of the GJSON path syntax.

Katib evaluates ``trialTemplate.successCondition`` / ``failureCondition`` with GJSON against the
run object (``status.conditions.#(type=="Complete")#|#(status=="True")#``) and treats a
non-empty result as "met". Supported here:

* dotted keys (``status.phase``) and array indexes (``status.conditions.0``), ``\\.`` escapes;
* queries ``#(key==value)`` (first match) and ``#(key==value)#`` (all matches), with the
  operators ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``%`` (glob) and ``!%``; values are
  JSON literals (``"True"``, ``1``, ``true``);
* ``#`` (array length) and ``|`` (apply the rest of the path to the result so far).

A path that matches nothing is "not met"; so are ``false``, ``null``, ``""`` and ``[]``.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

_QUERY = re.compile(r"^#\((.+?)(==|!=|<=|>=|<|>|!%|%)(.+)\)(#?)$")
_MISSING = object()


def _split(path: str) -> list[str]:
    """Path components: split on ``.`` and ``|`` outside queries; ``|`` is kept as a token."""
    parts: list[str] = []
    buf, depth, i = "", 0, 0
    while i < len(path):
        ch = path[i]
        if ch == "\\" and i + 1 < len(path):
            buf += path[i + 1]
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth == 0 and ch in ".|":
            if buf:
                parts.append(buf)
            if ch == "|":
                parts.append("|")
            buf = ""
        else:
            buf += ch
        i += 1
    if buf:
        parts.append(buf)
    return parts


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op in ("%", "!%"):
        hit = isinstance(left, str) and fnmatch.fnmatchcase(left, str(right))
        return hit if op == "%" else not hit
    try:
        return bool(
            {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
        )
    except TypeError:
        return False


def _literal(text: str) -> Any:
    try:
        return json.loads(text.strip())
    except json.JSONDecodeError:
        return text.strip()


def _query(node: Any, part: str) -> Any:
    match = _QUERY.match(part)
    if match is None or not isinstance(node, list):
        return _MISSING
    key, op, raw, every = match.groups()
    value = _literal(raw)
    hits = [
        item
        for item in node
        if isinstance(item, dict) and _compare(item.get(key.strip(), _MISSING), op, value)
    ]
    if every:
        return hits
    return hits[0] if hits else _MISSING


def _step(node: Any, part: str, mapped: bool) -> Any:
    if mapped and isinstance(node, list) and not part.startswith("#"):
        # After a ``#(...)#`` query, plain keys apply to each element (GJSON semantics).
        out = [_step(item, part, False) for item in node]
        return [o for o in out if o is not _MISSING]
    if part == "#":
        return len(node) if isinstance(node, list) else _MISSING
    if part.startswith("#("):
        return _query(node, part)
    if isinstance(node, dict):
        return node.get(part, _MISSING)
    if isinstance(node, list) and part.isdigit():
        index = int(part)
        return node[index] if index < len(node) else _MISSING
    return _MISSING


def evaluate(obj: Any, path: str) -> Any:
    """The value at ``path`` in ``obj`` (None when nothing matches)."""
    node, mapped = obj, False
    for part in _split(path):
        if part == "|":
            mapped = False
            continue
        node = _step(node, part, mapped)
        if node is _MISSING:
            return None
        mapped = part.startswith("#(") and part.endswith(")#")
    return node


def is_met(obj: Any, path: str) -> bool:
    """Whether a Katib condition expression holds for ``obj`` (a non-empty result)."""
    if not path:
        return False
    value = evaluate(obj, path)
    return value not in (None, False, "", [], {}) and value != "false"
