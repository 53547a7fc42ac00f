"""Parameter values of KFP v2 pipelines: typing, coercion and text forms.

Values are kept as plain JSON values (str, int, float, bool, list, dict, None) so run state stays
serializable. ``NUMBER_INTEGER`` values are kept as ``int`` (the protobuf ``Value`` the KFP backend
uses cannot tell 3 from 3.0; KFP's SDK casts back by annotation, we keep the int all the way).

Text forms follow KFP's launcher:

* :func:`placeholder_text` is what ``{{$.inputs.parameters['x']}}`` becomes in a command line
  (strings raw, numbers without exponent or trailing ``.0``, booleans ``true``/``false``,
  lists and dicts compact JSON);
* :func:`from_output_text` parses an output-parameter file the way the launcher does for each
  declared type.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from flowyard.errors import InvalidError

STRING = "STRING"
NUMBER_INTEGER = "NUMBER_INTEGER"
NUMBER_DOUBLE = "NUMBER_DOUBLE"
BOOLEAN = "BOOLEAN"
LIST = "LIST"
STRUCT = "STRUCT"
TASK_FINAL_STATUS = "TASK_FINAL_STATUS"
TASK_CONFIG = "TASK_CONFIG"

PARAMETER_TYPES = frozenset(
    {STRING, NUMBER_INTEGER, NUMBER_DOUBLE, BOOLEAN, LIST, STRUCT, TASK_FINAL_STATUS, TASK_CONFIG}
)

_PY_NAMES = {
    STRING: "str",
    NUMBER_INTEGER: "int",
    NUMBER_DOUBLE: "float",
    BOOLEAN: "bool",
    LIST: "list",
    STRUCT: "dict",
}

_TRUE_TEXT = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE_TEXT = {"0", "f", "F", "FALSE", "false", "False"}


class ParameterTypeError(ValueError):
    """A value does not fit its declared parameter type."""


def type_name(param_type: str) -> str:
    """The Python spelling of a parameter type, for error messages."""
    return _PY_NAMES.get(param_type, param_type)


def coerce(value: Any, param_type: str) -> Any:
    """Return ``value`` as ``param_type``; raise :class:`ParameterTypeError` when it cannot be.

    Accepts what a JSON/YAML document or the protobuf ``Value`` can carry: an integral float for
    an int (``1.0`` -> ``1``), an int for a float, JSON text for a list or dict.
    """
    if value is None:
        return None
    if param_type == STRING:
        if isinstance(value, str):
            return value
        raise ParameterTypeError(f"expected str, got {type(value).__name__} {value!r}")
    if param_type == NUMBER_INTEGER:
        return _coerce_int(value)
    if param_type == NUMBER_DOUBLE:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterTypeError(f"expected float, got {type(value).__name__} {value!r}")
        return float(value)
    if param_type == BOOLEAN:
        if isinstance(value, bool):
            return value
        raise ParameterTypeError(f"expected bool, got {type(value).__name__} {value!r}")
    if param_type in (LIST, STRUCT):
        return _coerce_json(value, param_type)
    return value


def _coerce_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ParameterTypeError(f"expected int, got bool {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise ParameterTypeError(f"expected int, got {type(value).__name__} {value!r}")


def _coerce_json(value: Any, param_type: str) -> Any:
    want: type = list if param_type == LIST else dict
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ParameterTypeError(f"expected {want.__name__} (JSON), got {value!r}") from exc
    if not isinstance(value, want):
        raise ParameterTypeError(f"expected {want.__name__}, got {type(value).__name__}")
    return value


def from_cli_text(text: str, param_type: str) -> Any:
    """Parse a ``-p key=value`` string as ``param_type`` (ints, floats, true/false, JSON)."""
    if param_type == STRING:
        return text
    if param_type == NUMBER_INTEGER:
        try:
            return int(text.strip())
        except ValueError as exc:
            raise ParameterTypeError(f"expected int, got {text!r}") from exc
    if param_type == NUMBER_DOUBLE:
        try:
            return float(text.strip())
        except ValueError as exc:
            raise ParameterTypeError(f"expected float, got {text!r}") from exc
    if param_type == BOOLEAN:
        return _parse_bool(text.strip())
    if param_type in (LIST, STRUCT):
        return _coerce_json(text, param_type)
    return text


def from_output_text(text: str, param_type: str) -> Any:
    """Parse an output-parameter file as the launcher does (strings are taken verbatim)."""
    if param_type == STRING:
        return text
    stripped = text.strip()
    if param_type == NUMBER_INTEGER:
        try:
            return int(stripped)
        except ValueError:
            try:
                return _coerce_int(float(stripped))
            except (ValueError, ParameterTypeError) as exc:
                raise ParameterTypeError(f"expected int, got {text!r}") from exc
    if param_type == NUMBER_DOUBLE:
        try:
            return float(stripped)
        except ValueError as exc:
            raise ParameterTypeError(f"expected float, got {text!r}") from exc
    if param_type == BOOLEAN:
        return _parse_bool(stripped)
    if param_type in (LIST, STRUCT):
        return _coerce_json(stripped, param_type)
    return text


def _parse_bool(text: str) -> bool:
    if text in _TRUE_TEXT:
        return True
    if text in _FALSE_TEXT:
        return False
    raise ParameterTypeError(f"expected bool (true/false), got {text!r}")


def placeholder_text(value: Any) -> str:
    """The command-line text of a parameter value (KFP launcher formatting)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    return json.dumps(value, separators=(",", ":"))


def format_number(value: float) -> str:
    """A float without exponent and without a trailing ``.0`` (Go's ``FormatFloat(v,'f',-1)``)."""
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def default_of(spec: dict[str, Any]) -> Any:
    """The declared default of an input parameter spec, typed (``1.0`` -> ``1`` for ints)."""
    if "defaultValue" not in spec:
        return None
    param_type = spec.get("parameterType", "")
    try:
        return coerce(spec["defaultValue"], param_type)
    except ParameterTypeError:
        return spec["defaultValue"]


def typed_collection(values: list[Any], item_type: str | None) -> list[Any]:
    """Coerce each collected value to ``item_type`` when known (keeps ints ints)."""
    if not item_type:
        return values
    out = []
    for value in values:
        try:
            out.append(coerce(value, item_type))
        except ParameterTypeError:
            out.append(value)
    return out


def check_parameter(path: str, value: Any, param_type: str) -> Any:
    """Coerce a user-supplied value, raising InvalidError naming ``path`` when it does not fit."""
    try:
        return coerce(value, param_type)
    except ParameterTypeError as exc:
        raise InvalidError(
            f"parameter {path!r} must be {type_name(param_type)}: {exc}",
            causes=[_cause(path, str(exc))],
        ) from exc


def _cause(path: str, message: str) -> Any:
    from flowyard.errors import FieldCause

    return FieldCause(field=path, message=message)
