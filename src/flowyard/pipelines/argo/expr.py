"""Argo template variables (``{{inputs.parameters.x}}``) and ``when`` conditions.

``when`` accepts both of Argo's forms: govaluate (``{{x}} == true`` after substitution: bare words
are strings, numbers compare as numbers, ``&& || ! ( )`` and comparisons) and expr
(``{{= inputs.parameters["x"] == 'true'}}``, evaluated by the safe CEL-subset parser of
:mod:`flowyard.pipelines.cel` with ``inputs``, ``workflow``, ``steps``, ``tasks``, ``item`` and
``jsonpath(value, '$[i].key')``). Nothing is passed to ``eval``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from flowyard.pipelines import cel

_VAR = re.compile(r"\{\{\s*([^{}=][^{}]*?)\s*\}\}")
_EXPR = re.compile(r"\{\{=\s*(.*?)\s*\}\}", re.S)
_OPERATORS = re.compile(r"(==|!=|<=|>=|&&|\|\||[<>()!])")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")

Lookup = Callable[[str], str | None]


def substitute(text: str, lookup: Lookup) -> str:
    """Replace each ``{{name}}`` that ``lookup`` knows; leave the others as written."""

    def one(match: re.Match[str]) -> str:
        value = lookup(match.group(1))
        return match.group(0) if value is None else value

    return _VAR.sub(one, text)


def substitute_all(value: Any, lookup: Lookup) -> Any:
    if isinstance(value, str):
        return substitute(value, lookup)
    if isinstance(value, list):
        return [substitute_all(v, lookup) for v in value]
    if isinstance(value, dict):
        return {k: substitute_all(v, lookup) for k, v in value.items()}
    return value


class _ExprParser(cel._Parser):
    """The CEL subset plus Argo's two-argument ``jsonpath(value, path)``."""

    def name(self, text: str) -> Any:
        if text == "jsonpath" and self.peek() == "(":
            self.take("(")
            value = self.or_expr()
            self.take(",")
            path = self.or_expr()
            self.take(")")
            return _jsonpath(value, str(path))
        return super().name(text)


def _jsonpath(value: Any, path: str) -> Any:
    data = json.loads(value) if isinstance(value, str) else value
    for part in re.findall(r"\[(\d+)\]|\.([A-Za-z0-9_-]+)|\['([^']+)'\]", path.lstrip("$")):
        index, key, quoted = part
        data = data[int(index)] if index else data[key or quoted]
    return data


def evaluate_when(condition: str, lookup: Lookup, env: dict[str, Any]) -> bool:
    """Evaluate a ``when`` condition (either form); CelError when it cannot be evaluated."""
    text = condition.strip()
    match = _EXPR.fullmatch(text)
    if match:
        return bool(_ExprParser(match.group(1), env).parse())
    return bool(cel._Parser(_govaluate_to_cel(substitute(text, lookup)), {}).parse())


def _govaluate_to_cel(text: str) -> str:
    """Quote bare operands so that ``heads == tails`` compares strings."""
    parts = []
    for piece in _OPERATORS.split(text):
        stripped = piece.strip()
        if not stripped or _OPERATORS.fullmatch(stripped):
            parts.append(piece)
        elif _literal(stripped):
            parts.append(stripped)
        else:
            parts.append(json.dumps(stripped))
    return " ".join(p.strip() for p in parts if p.strip())


def _literal(text: str) -> bool:
    quoted = len(text) > 1 and text[0] in "'\"" and text[-1] == text[0]
    return bool(_NUMBER.match(text)) or text in ("true", "false") or quoted
