"""Kubernetes label and field selectors: parse once, match many objects.

Label selectors (``?labelSelector=``) follow Kubernetes' grammar: requirements joined by commas
(AND), each one of ``key``, ``!key``, ``key=value``, ``key==value``, ``key!=value``,
``key in (v1,v2)``, ``key notin (v1,v2)``, ``key>N`` or ``key<N``. ``!=`` and ``notin`` also
match objects that do not carry the label at all, as in Kubernetes.

Field selectors (``?fieldSelector=``) are ``path=value``, ``path==value`` or ``path!=value``
terms joined by commas, where ``path`` is a dotted path into the object (``metadata.name``,
``status.phase``, ``involvedObject.uid``). A missing field reads as the empty string; numbers and
booleans compare by their JSON text (``true``, ``3``). ``\\,``, ``\\=`` and ``\\\\`` escape those
characters in a value.

Bad syntax raises :class:`~flowyard.errors.BadRequestError` naming the selector, the position and
what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from flowyard.errors import BadRequestError
from flowyard.resources.meta import Resource, label_key_problem, label_value_problem

LabelOperator = Literal["=", "!=", "in", "notin", "exists", "!", ">", "<"]
FieldOperator = Literal["=", "!="]

_SPECIAL = "!=,()<> \t"
_EQUALITY: tuple[tuple[str, LabelOperator], ...] = (("==", "="), ("!=", "!="), ("=", "="))
_ORDERING: tuple[tuple[str, LabelOperator], ...] = ((">", ">"), ("<", "<"))
_SET_WORDS: dict[str, LabelOperator] = {"in": "in", "notin": "notin"}
_FIELD_OPERATORS: tuple[tuple[str, FieldOperator], ...] = (("!=", "!="), ("==", "="), ("=", "="))
_FIELD_PATH = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


@dataclass(frozen=True)
class Requirement:
    """One label requirement: ``key`` ``operator`` ``values`` (``values`` is empty for
    ``exists``/``!``)."""

    key: str
    operator: LabelOperator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        return present and _compare_int(value, self.operator, self.values[0])


def _compare_int(value: str | None, operator: str, bound: str) -> bool:
    try:
        number = int(value or "")
    except ValueError:
        return False
    return number > int(bound) if operator == ">" else number < int(bound)


@dataclass(frozen=True)
class LabelSelector:
    """Requirements that must all hold; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def matches_object(self, obj: Resource) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return self.matches(labels if isinstance(labels, dict) else {})


@dataclass(frozen=True)
class FieldTerm:
    path: str
    operator: FieldOperator
    value: str

    def matches(self, obj: Resource) -> bool:
        equal = field_value(obj, self.path) == self.value
        return equal if self.operator == "=" else not equal


@dataclass(frozen=True)
class FieldSelector:
    """Field terms that must all hold; the empty selector matches everything."""

    terms: tuple[FieldTerm, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, obj: Resource) -> bool:
        return all(t.matches(obj) for t in self.terms)

    def equals(self, path: str) -> str | None:
        """The value an ``=`` term requires of ``path`` (lets a store narrow its query)."""
        for term in self.terms:
            if term.path == path and term.operator == "=":
                return term.value
        return None


def field_value(obj: Resource, path: str) -> str:
    """The value at dotted ``path`` as a selector compares it ("" when missing)."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return ""
        current = current[part]
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    if isinstance(current, (str, int, float)):
        return str(current)
    return ""


class _LabelParser:
    """Recursive-descent parser over the selector text (positions are 0-based characters)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, problem: str) -> BadRequestError:
        return BadRequestError(
            f'invalid label selector "{self.text}": {problem} at position {self.pos}; '
            "expected requirements such as 'app=web', 'tier in (a,b)', '!canary', joined by ','"
        )

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def peek(self, token: str) -> bool:
        self.skip_space()
        return self.text.startswith(token, self.pos)

    def word(self) -> str:
        self.skip_space()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _SPECIAL:
            self.pos += 1
        return self.text[start : self.pos]

    def expect(self, token: str) -> None:
        if not self.peek(token):
            found = self.text[self.pos : self.pos + 1] or "end of input"
            raise self.fail(f"expected '{token}' but found '{found}'")
        self.pos += len(token)

    def parse(self) -> LabelSelector:
        requirements: list[Requirement] = []
        self.skip_space()
        if self.pos == len(self.text):
            return LabelSelector()
        while True:
            requirements.append(self.requirement())
            self.skip_space()
            if self.pos == len(self.text):
                return LabelSelector(tuple(requirements))
            self.expect(",")

    def requirement(self) -> Requirement:
        if self.peek("!") and not self.peek("!="):
            self.pos += 1
            return Requirement(self.key(), "!")
        key = self.key()
        self.skip_space()
        for token, operator in _EQUALITY:
            if self.peek(token):
                self.pos += len(token)
                return Requirement(key, operator, (self.value(),))
        for token, operator in _ORDERING:
            if self.peek(token):
                self.pos += len(token)
                return Requirement(key, operator, (self.integer(),))
        mark = self.pos
        word = self.word()
        if word in _SET_WORDS:
            return Requirement(key, _SET_WORDS[word], self.value_set())
        self.pos = mark
        if self.pos < len(self.text) and self.text[self.pos] != ",":
            raise self.fail(f"unexpected '{self.text[self.pos]}' after label key '{key}'")
        return Requirement(key, "exists")

    def key(self) -> str:
        key = self.word()
        if not key:
            raise self.fail("expected a label key")
        problem = label_key_problem(key)
        if problem:
            raise self.fail(f"invalid label key '{key}': {problem}")
        return key

    def value(self) -> str:
        value = self.word()
        problem = label_value_problem(value)
        if problem:
            raise self.fail(f"invalid label value '{value}': {problem}")
        return value

    def integer(self) -> str:
        value = self.word()
        if not re.fullmatch(r"-?[0-9]+", value):
            raise self.fail(f"'{value}' is not an integer (needed by '>' and '<')")
        return value

    def value_set(self) -> tuple[str, ...]:
        self.expect("(")
        values: list[str] = []
        while True:
            values.append(self.value())
            if self.peek(")"):
                self.pos += 1
                return tuple(values)
            self.expect(",")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a label selector string; None or blank selects everything."""
    if not text:
        return LabelSelector()
    return _LabelParser(text).parse()


def label_selector_from_object(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A Kubernetes ``LabelSelector`` object (``matchLabels`` + ``matchExpressions`` with
    In/NotIn/Exists/DoesNotExist), as found in ``spec.selector``."""
    if not selector:
        return LabelSelector()
    reqs = [
        Requirement(str(k), "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    operators: dict[str, LabelOperator] = {
        "In": "in",
        "NotIn": "notin",
        "Exists": "exists",
        "DoesNotExist": "!",
    }
    for expr in selector.get("matchExpressions") or []:
        operator = operators.get(str(expr.get("operator")))
        if operator is None:
            raise BadRequestError(
                f"invalid label selector operator {expr.get('operator')!r} for key "
                f"{expr.get('key')!r}: use one of In, NotIn, Exists, DoesNotExist"
            )
        values = tuple(str(v) for v in expr.get("values") or ())
        reqs.append(Requirement(str(expr.get("key")), operator, values))
    return LabelSelector(tuple(reqs))


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(value: str, selector: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise BadRequestError(
                    f'invalid field selector "{selector}": bad escape in value {value!r}; only '
                    "'\\\\', '\\,' and '\\=' may be escaped"
                )
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _field_term(raw: str, selector: str) -> FieldTerm:
    # The path holds no '=' or '!', so the first of them starts the operator.
    index = min((i for i in (raw.find("="), raw.find("!")) if i >= 0), default=-1)
    for token, operator in _FIELD_OPERATORS:
        if index >= 0 and raw.startswith(token, index):
            path = raw[:index].strip()
            value = _unescape(raw[index + len(token) :].strip(), selector)
            if not _FIELD_PATH.match(path):
                raise BadRequestError(
                    f'invalid field selector "{selector}": {path!r} is not a field path; use a '
                    "dotted path such as metadata.name or status.phase"
                )
            return FieldTerm(path, operator, value)
    raise BadRequestError(
        f'invalid field selector "{selector}": term {raw.strip()!r} has no operator; use '
        "'path=value', 'path==value' or 'path!=value'"
    )


def parse_field_selector(text: str | None) -> FieldSelector:
    """Parse a field selector string; None or blank selects everything."""
    if not text or not text.strip():
        return FieldSelector()
    terms = []
    for raw in _split_unescaped(text, ","):
        if not raw.strip():
            raise BadRequestError(
                f'invalid field selector "{text}": empty term; join terms with single commas'
            )
        terms.append(_field_term(raw, text))
    return FieldSelector(tuple(terms))


__all__ = [
    "FieldSelector",
    "FieldTerm",
    "LabelSelector",
    "Requirement",
    "field_value",
    "label_selector_from_object",
    "parse_field_selector",
    "parse_label_selector",
]
