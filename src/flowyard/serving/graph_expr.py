"""The subset of gjson path syntax that InferenceGraph ``condition`` fields use.

KServe's graph router evaluates a step's ``condition`` with gjson (``GetBytes(doc,
condition).Exists()``). flowyard implements the forms KServe documents:

* ``[@this]`` wraps the document in a one-element array (so a query can test the whole body);
* dotted paths of object keys and array indices (``predictions.0``, ``a\\.b`` escapes a dot),
  ``#`` (the length of an array);
* queries ``#(PATH OP VALUE)`` (the first array element that matches) and ``#(...)#`` (all
  matches; exists when at least one matches), ``#(PATH)`` (the element has that path);
  ``OP`` is ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``%`` (glob like) or ``!%``;
  ``VALUE`` a JSON string, number, ``true``, ``false`` or ``null``.

Not supported (refused with :class:`ValueError` naming the expression): modifiers other than
``@this``, multipaths other than ``[@this]``, wildcards in keys, nested queries and ``..``
(JSON lines). A path that does not resolve does not exist, as in gjson.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

MISSING = object()
_QUERY = re.compile(r"^(?P<path>.*?)\s*(?P<op>==|!=|<=|>=|!%|<|>|%)\s*(?P<value>.+)$")


def check(expr: str) -> None:
    """Raise :class:`ValueError` naming the problem when ``expr`` uses unsupported syntax."""
    text = expr.strip()
    for prefix in ("[@this]", "@this"):
        if text.startswith(prefix):
            text = text[len(prefix) :].lstrip(".")
            break
    for part in _split(text, expr):
        if part.startswith("#("):
            inner = part[2 : -2 if part.endswith(")#") else -1]
            match = _QUERY.match(inner)
            if match is not None:
                _literal(match["value"].strip(), expr)
                check(match["path"].strip())
            else:
                check(inner)
        elif part != "#" and (part.startswith("@") or "*" in part or "?" in part):
            _step({}, part, expr)


def exists(doc: Any, expr: str) -> bool:
    """True when ``expr`` selects something in ``doc`` (JSON ``null`` counts, as in gjson)."""
    return evaluate(doc, expr) is not MISSING


def evaluate(doc: Any, expr: str) -> Any:
    """The value ``expr`` selects in ``doc``, or :data:`MISSING`."""
    text = expr.strip()
    if text.startswith("[@this]"):
        doc, text = [doc], text[len("[@this]") :].lstrip(".")
    elif text.startswith("@this"):
        text = text[len("@this") :].lstrip(".")
    current = doc
    for part in _split(text, expr):
        current = _step(current, part, expr)
        if current is MISSING:
            return MISSING
    return current


def _split(path: str, expr: str) -> list[str]:
    """Path components split on unescaped dots, keeping ``#(...)`` groups whole."""
    parts: list[str] = []
    buf: list[str] = []
    depth = 0
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == "\\" and i + 1 < len(path):
            # inside a query the escape is the query path's own: keep it for that split
            buf.append(path[i : i + 2] if depth else path[i + 1])
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    if depth != 0:
        raise ValueError(f"condition {expr!r}: unbalanced parentheses")
    if buf or parts:
        parts.append("".join(buf))
    return [p for p in parts if p != ""]


def _step(current: Any, part: str, expr: str) -> Any:
    if part == "#":
        return len(current) if isinstance(current, list) else MISSING
    if part.startswith("#("):
        return _query(current, part, expr)
    if part.startswith("@") or "*" in part or "?" in part:
        raise ValueError(
            f"condition {expr!r}: {part!r} is not supported (flowyard supports keys, indices, "
            "#, #(...) queries and [@this])"
        )
    if isinstance(current, dict):
        return current.get(part, MISSING)
    if isinstance(current, list) and part.isdigit():
        index = int(part)
        return current[index] if index < len(current) else MISSING
    return MISSING


def _query(current: Any, part: str, expr: str) -> Any:
    all_matches = part.endswith(")#")
    inner = part[2 : -2 if all_matches else -1]
    if not isinstance(current, list):
        return MISSING
    test = _compile(inner, expr)
    matches = [item for item in current if test(item)]
    if all_matches:
        return matches if matches else MISSING
    return matches[0] if matches else MISSING


def _compile(inner: str, expr: str) -> Any:
    match = _QUERY.match(inner)
    if match is None:
        path = inner.strip()
        return lambda item: evaluate(item, path) is not MISSING
    path, op, raw = match["path"].strip(), match["op"], match["value"].strip()
    wanted = _literal(raw, expr)

    def test(item: Any) -> bool:
        got = evaluate(item, path) if path else item
        return got is not MISSING and _compare(got, op, wanted)

    return test


def _literal(raw: str, expr: str) -> Any:
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return raw[1:-1].replace('\\"', '"')
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    try:
        return float(raw)
    except ValueError:
        raise ValueError(
            f"condition {expr!r}: {raw!r} is not a JSON string (quote it), number, "
            "true, false or null"
        ) from None


def _compare(got: Any, op: str, wanted: Any) -> bool:
    if op in ("%", "!%"):
        hit = isinstance(got, str) and isinstance(wanted, str) and fnmatch.fnmatchcase(got, wanted)
        return hit if op == "%" else not hit
    number = (int, float)
    if isinstance(wanted, bool) or wanted is None or isinstance(got, bool):
        same = got is wanted or (isinstance(got, bool) and got == wanted)
        return {"==": same, "!=": not same}.get(op, False)
    if isinstance(wanted, number) and isinstance(got, number):
        a, b = float(got), float(wanted)
    elif isinstance(wanted, str) and isinstance(got, str):
        a, b = got, wanted  # type: ignore[assignment]
    else:
        return op == "!="
    return {
        "==": a == b,
        "!=": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]
