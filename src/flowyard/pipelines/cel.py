"""A small, safe evaluator for the CEL conditions KFP compiles ``dsl.If/Elif/Else`` into.

KFP writes trigger conditions such as::

    !(int(inputs.parameter_values['pipelinechannel--x']) > 1) && inputs.parameter_values['s'] == 'a'

This module parses that language subset (``||``, ``&&``, ``!``, parentheses, comparisons, the
conversion functions ``int``, ``double``, ``string``, ``bool``, string/number/bool/null literals and
``inputs.parameter_values[...]`` / ``inputs.parameters[...]`` look-ups, with ``[...]`` and ``.``
access into lists and dicts) with a recursive-descent parser. Nothing is passed to ``eval``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flowyard.errors import InvalidError

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>\d+\.\d*(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?|\.\d+)
      | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<op>\|\||&&|==|!=|<=|>=|[<>!()\[\].,+\-*/%])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


class CelError(InvalidError):
    """A trigger condition that cannot be parsed or evaluated."""


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise CelError(f"cannot parse condition {text!r} at offset {pos}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _to_int(value: Any) -> int:
    if isinstance(value, str):
        return int(float(value)) if "." in value else int(value)
    return int(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


_FUNCS: dict[str, Callable[[Any], Any]] = {
    "int": _to_int,
    "double": float,
    "string": lambda v: v if isinstance(v, str) else str(v),
    "bool": _to_bool,
    "size": len,
}


class _Parser:
    def __init__(self, text: str, env: dict[str, Any]) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.env = env

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise CelError(f"unexpected end of condition {self.text!r}")
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            raise CelError(f"expected {expected!r} in condition {self.text!r}, got {token[1]!r}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.or_expr()
        if self.pos != len(self.tokens):
            raise CelError(f"unexpected {self.peek()!r} in condition {self.text!r}")
        return value

    def or_expr(self) -> Any:
        value = self.and_expr()
        while self.peek() == "||":
            self.take()
            right = self.and_expr()
            value = bool(value) or bool(right)
        return value

    def and_expr(self) -> Any:
        value = self.comparison()
        while self.peek() == "&&":
            self.take()
            right = self.comparison()
            value = bool(value) and bool(right)
        return value

    def comparison(self) -> Any:
        left = self.additive()
        op = self.peek()
        if op in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            return _compare(op, left, self.additive(), self.text)
        return left

    def additive(self) -> Any:
        value = self.unary()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            right = self.unary()
            value = value + right if op == "+" else value - right
        return value

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not bool(self.unary())
        if self.peek() == "-":
            self.take()
            return -self.unary()
        return self.postfix()

    def postfix(self) -> Any:
        value = self.primary()
        while self.peek() in ("[", "."):
            if self.take()[1] == "[":
                key = self.or_expr()
                self.take("]")
                value = _index(value, key, self.text)
            else:
                value = _index(value, self.take()[1], self.text)
        return value

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "str":
            return _unquote(text)
        if text == "(":
            value = self.or_expr()
            self.take(")")
            return value
        if kind == "name":
            return self.name(text)
        raise CelError(f"unexpected {text!r} in condition {self.text!r}")

    def name(self, text: str) -> Any:
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if text in _FUNCS and self.peek() == "(":
            self.take("(")
            arg = self.or_expr()
            self.take(")")
            try:
                return _FUNCS[text](arg)
            except (TypeError, ValueError) as exc:
                raise CelError(f"{text}({arg!r}) failed in condition {self.text!r}") from exc
        if text in self.env:
            return self.env[text]
        raise CelError(f"unknown name {text!r} in condition {self.text!r}")


def _index(value: Any, key: Any, text: str) -> Any:
    try:
        return value[key]
    except (KeyError, IndexError, TypeError) as exc:
        raise CelError(f"no value for {key!r} in condition {text!r}") from exc


def _compare(op: str, left: Any, right: Any, text: str) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    try:
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        return bool(left >= right)
    except TypeError as exc:
        raise CelError(f"cannot compare {left!r} {op} {right!r} in condition {text!r}") from exc


def evaluate(condition: str, parameter_values: dict[str, Any]) -> bool:
    """Evaluate a KFP trigger condition against a task's resolved input parameters."""
    inputs = {"parameter_values": parameter_values, "parameters": parameter_values}
    return bool(_Parser(condition, {"inputs": inputs}).parse())
