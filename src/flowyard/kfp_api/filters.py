"""KFP list filters: the JSON-serialized ``v2beta1.Filter`` (``{"predicates": [...]}``).

Each predicate has ``operation`` (name or enum number: EQUALS 1, NOT_EQUALS 2, GREATER_THAN 3,
GREATER_THAN_EQUALS 5, LESS_THAN 6, LESS_THAN_EQUALS 7, IN 8, IS_SUBSTRING 9), ``key`` and one
value field (``string_value``, ``int_value``, ``long_value``, ``timestamp_value`` or, for IN,
``string_values``/``int_values``/``long_values`` ``{"values": [...]}``); protobuf's camelCase
spellings are accepted too. Predicates are ANDed, as in KFP. Keys are mapped to row fields by
each list (``name`` and ``display_name`` are the same thing); time fields compare as epoch
seconds, and take RFC 3339 strings or numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowyard.errors import BadRequestError

OPERATIONS = {
    "EQUALS": 1,
    "NOT_EQUALS": 2,
    "GREATER_THAN": 3,
    "GREATER_THAN_EQUALS": 5,
    "LESS_THAN": 6,
    "LESS_THAN_EQUALS": 7,
    "IN": 8,
    "IS_SUBSTRING": 9,
}
_NAMES = {v: k for k, v in OPERATIONS.items()}
_SCALARS = ("string_value", "int_value", "long_value", "timestamp_value")
_LISTS = ("string_values", "int_values", "long_values")
Row = Mapping[str, Any]


@dataclass(frozen=True)
class Predicate:
    op: str
    key: str
    value: Any


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def to_epoch(value: Any, key: str) -> float:
    """An RFC 3339 string or a number of seconds as epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise BadRequestError(
            f'invalid filter: {key} needs an RFC 3339 time such as "2024-01-31T12:00:00Z" or '
            f"epoch seconds, got {value!r}"
        ) from None


def _operation(raw: Any) -> str:
    if isinstance(raw, int) and raw in _NAMES:
        return _NAMES[raw]
    if isinstance(raw, str) and raw.upper() in OPERATIONS:
        return raw.upper()
    raise BadRequestError(
        f"invalid filter: unknown predicate operation {raw!r}; use one of " + ", ".join(OPERATIONS)
    )


def _value(pred: dict[str, Any], op: str, key: str) -> Any:
    fields = {_snake(k): v for k, v in pred.items()}
    if op == "IN":
        for name in _LISTS:
            if name in fields:
                values = fields[name].get("values") if isinstance(fields[name], dict) else None
                if not isinstance(values, list):
                    break
                return values
        raise BadRequestError(
            f"invalid filter: IN on {key!r} needs string_values/int_values/long_values "
            '{"values": [...]}'
        )
    for name in _SCALARS:
        if name in fields:
            return fields[name]
    raise BadRequestError(
        f"invalid filter: predicate on {key!r} has no value; set one of " + ", ".join(_SCALARS)
    )


def parse_filter(text: str | None, keys: Mapping[str, str]) -> list[Predicate]:
    """The predicates of a filter string; ``keys`` maps accepted KFP keys to row fields.
    BadRequestError (gRPC InvalidArgument) names what is wrong."""
    if not text:
        return []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"invalid filter: not JSON ({exc.msg}): {text[:100]!r}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("predicates", []), list):
        raise BadRequestError('invalid filter: expected {"predicates": [...]}')
    out = []
    for pred in doc.get("predicates") or []:
        if not isinstance(pred, dict):
            raise BadRequestError("invalid filter: each predicate must be an object")
        key = str(pred.get("key") or "")
        if key not in keys:
            raise BadRequestError(
                f"invalid filter: cannot filter on key {key!r}; supported keys: "
                + ", ".join(sorted(keys))
            )
        op = _operation(pred.get("operation", pred.get("op")))
        out.append(Predicate(op, keys[key], _value(pred, op, key)))
    return out


def _compare(op: str, have: Any, want: Any) -> bool:
    if op == "IS_SUBSTRING":
        return str(want) in str(have or "")
    if op == "IN":
        return have in want
    if op == "EQUALS":
        return bool(have == want)
    if op == "NOT_EQUALS":
        return bool(have != want)
    if have is None:
        return False
    if op == "GREATER_THAN":
        return bool(have > want)
    if op == "GREATER_THAN_EQUALS":
        return bool(have >= want)
    if op == "LESS_THAN":
        return bool(have < want)
    return bool(have <= want)


def compile_filter(
    predicates: list[Predicate],
    time_fields: frozenset[str],
    translate: Callable[[str, Any], Any] | None = None,
) -> Callable[[Row], bool]:
    """A row test for ``predicates``. Values of ``time_fields`` become epoch seconds;
    ``translate(field, value)`` rewrites other values (ids to names, say)."""
    checks: list[tuple[str, str, Any]] = []
    for p in predicates:

        def convert(value: Any, key: str = p.key) -> Any:
            if key in time_fields:
                return to_epoch(value, key)
            return translate(key, value) if translate is not None else value

        value = [convert(v) for v in p.value] if p.op == "IN" else convert(p.value)
        checks.append((p.op, p.key, value))

    def test(row: Row) -> bool:
        for op, field, value in checks:
            try:
                if not _compare(op, row.get(field), value):
                    return False
            except TypeError:
                raise BadRequestError(
                    f"invalid filter: {op} cannot compare {field} with {value!r}"
                ) from None
        return True

    return test
