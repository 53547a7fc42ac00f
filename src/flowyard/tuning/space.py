"""The search space of a Katib Experiment: ``spec.parameters`` parsed into typed parameters.

Katib keeps every bound and value as a string (``min: "0.01"``, assignments ``"0.0234"``). Here
each parameter knows its type, so suggestions carry typed values (``int`` stays ``int``, ``double``
is ``float``, ``discrete`` values are numbers, ``categorical`` values are the strings of
``feasibleSpace.list``) and :meth:`Parameter.format` gives back Katib's string form for
``${trialParameters.x}`` substitution and ``spec.parameterAssignments``.

:func:`parameter_causes` is the semantic check of ``spec.parameters`` used at admission;
:meth:`SearchSpace.from_spec` refuses a spec that fails it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from flowyard.errors import FieldCause, InvalidError

Value = int | float | str
"""A typed parameter value."""

TYPES = ("double", "int", "discrete", "categorical")
DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")
LOG_DISTRIBUTIONS = ("logUniform", "logNormal")
_MAX_GRID_POINTS = 1_000_000


@dataclass(frozen=True)
class Parameter:
    """One entry of ``spec.parameters``."""

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    step_text: str = ""
    choices: tuple[Value, ...] = ()
    distribution: str = "uniform"

    @property
    def is_numeric_range(self) -> bool:
        return self.type in ("double", "int")

    @property
    def log(self) -> bool:
        return self.distribution in LOG_DISTRIBUTIONS

    def parse(self, text: object) -> Value:
        """The typed value of an assignment written as Katib writes it (a string)."""
        if self.type == "int":
            if isinstance(text, bool):
                raise ValueError(f"{self.name}: {text!r} is not an integer")
            return int(text) if isinstance(text, int) else int(str(text).strip())
        if self.type == "double":
            return float(text)  # type: ignore[arg-type]
        if self.type == "discrete":
            wanted = _number(str(text))
            for choice in self.choices:
                if float(choice) == float(wanted):
                    return choice
            raise ValueError(f"{self.name}: {text!r} is not one of {list(self.choices)}")
        value = str(text)
        if value not in self.choices:
            raise ValueError(f"{self.name}: {value!r} is not one of {list(self.choices)}")
        return value

    def format(self, value: Value) -> str:
        """Katib's string form of a typed value (``str()`` of the Python value, as Katib's
        Python suggestion services send it)."""
        if self.type == "int":
            return str(int(value))
        if self.type == "double":
            return repr(float(value))
        return str(value)

    def contains(self, value: Value) -> bool:
        if self.type in ("discrete", "categorical"):
            return value in self.choices
        assert self.low is not None and self.high is not None
        number = float(value)
        return self.low - 1e-12 <= number <= self.high + 1e-12

    def snap(self, value: float) -> Value:
        """Clip ``value`` into range, round it onto the step grid and give it this type."""
        assert self.low is not None and self.high is not None
        number = min(max(float(value), float(self.low)), float(self.high))
        if self.step:
            count = round((number - float(self.low)) / float(self.step))
            number = float(_grid_point(self, count))
        if self.type == "int":
            return round(number)
        return number

    def grid(self) -> list[Value]:
        """Every value the grid algorithm visits, in order (``min``, ``min+step``, ... ``<= max``
        for numbers; the list order for discrete and categorical)."""
        if not self.is_numeric_range:
            return list(self.choices)
        assert self.low is not None and self.high is not None
        step = self.step if self.step else (1 if self.type == "int" else None)
        if step is None:
            raise ValueError(f"parameter {self.name} has no feasibleSpace.step")
        count = (
            math.floor(
                (Decimal(str(self.high)) - Decimal(str(self.low))) / Decimal(str(step))
                + Decimal("1e-9")
            )
            + 1
        )
        values: list[Value] = []
        for index in range(min(count, _MAX_GRID_POINTS)):
            point = _grid_point(self, index, step)
            values.append(int(point) if self.type == "int" else float(point))
        return values


def _grid_point(param: Parameter, index: int, step: float | int | None = None) -> Decimal:
    """``min + index*step`` in decimal arithmetic, so 0.01 + 2*0.005 is 0.02, not 0.0200..04."""
    step_text = param.step_text if step is None or step == param.step else str(step)
    return Decimal(str(param.low)) + Decimal(index) * Decimal(step_text or str(step))


@dataclass(frozen=True)
class SearchSpace:
    """All parameters of an experiment, in spec order."""

    parameters: tuple[Parameter, ...]
    by_name: Mapping[str, Parameter] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> SearchSpace:
        """Build from an ExperimentSpec; InvalidError naming each bad field if it is invalid."""
        raw = spec.get("parameters") or []
        causes = parameter_causes(raw)
        if causes:
            raise InvalidError(
                "spec.parameters is invalid: "
                + "; ".join(f"{c.field}: {c.message}" for c in causes),
                causes=causes,
            )
        params = tuple(_build(p) for p in raw)
        return cls(params, {p.name: p for p in params})

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def parse(
        self,
        assignments: Mapping[str, object] | Iterable[Mapping[str, Any]],
        unbounded: Iterable[str] = (),
    ) -> dict[str, Value]:
        """Typed values from ``{name: value}`` or Katib's ``[{name, value}]``; ValueError if a
        parameter is missing, unknown or out of its feasible space (parameters named in
        ``unbounded`` may leave it: hyperband's resource parameter does, as in Katib)."""
        pairs = _pairs(assignments)
        free = frozenset(unbounded)
        missing = [n for n in self.names if n not in pairs]
        unknown = [n for n in pairs if n not in self.by_name]
        if missing or unknown:
            raise ValueError(
                f"assignments do not match spec.parameters (missing {missing}, unknown {unknown})"
            )
        out: dict[str, Value] = {}
        for name in self.names:
            param = self.by_name[name]
            value = param.parse(pairs[name])
            if name not in free and not param.contains(value):
                raise ValueError(f"{name}={value!r} is outside its feasibleSpace")
            out[name] = value
        return out

    def format(self, values: Mapping[str, Value]) -> dict[str, str]:
        """Katib string form of typed values."""
        return {name: self.by_name[name].format(values[name]) for name in self.names}

    def key(self, values: Mapping[str, Value]) -> tuple[str, ...]:
        """A canonical, hashable identity of one assignment (used to detect duplicates)."""
        return tuple(self.by_name[n].format(values[n]) for n in self.names)

    def grid_size(self) -> int:
        size = 1
        for param in self.parameters:
            size *= len(param.grid())
        return size


def _pairs(assignments: Mapping[str, object] | Iterable[Mapping[str, Any]]) -> dict[str, object]:
    if isinstance(assignments, Mapping):
        return dict(assignments)
    return {str(a["name"]): a.get("value") for a in assignments}


def _number(text: str) -> int | float:
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        return float(stripped)


def _build(raw: Mapping[str, Any]) -> Parameter:
    space = raw.get("feasibleSpace") or {}
    kind = raw["parameterType"]
    distribution = space.get("distribution") or "uniform"
    if kind in ("double", "int"):
        cast = int if kind == "int" else float
        step_text = str(space.get("step") or "")
        step = cast(step_text) if step_text else None
        return Parameter(
            raw["name"],
            kind,
            cast(space["min"]),
            cast(space["max"]),
            step,
            step_text,
            (),
            distribution,
        )
    items = [str(v) for v in space.get("list") or []]
    choices: tuple[Value, ...] = (
        tuple(_number(v) for v in items) if kind == "discrete" else tuple(items)
    )
    return Parameter(raw["name"], kind, choices=choices, distribution=distribution)


def parameter_causes(raw: object) -> list[FieldCause]:
    """Every semantic problem of ``spec.parameters`` (types, names, bounds, steps, lists,
    distributions), each naming its field."""
    if not isinstance(raw, list):
        return [FieldCause("spec.parameters", "Invalid value: must be a list")]
    causes: list[FieldCause] = []
    seen: set[str] = set()
    for index, param in enumerate(raw):
        path = f"spec.parameters[{index}]"
        if not isinstance(param, dict):
            causes.append(FieldCause(path, "Invalid value: must be an object"))
            continue
        name = param.get("name")
        if not name:
            causes.append(FieldCause(f"{path}.name", "Required value", "FieldValueRequired"))
        elif name in seen:
            causes.append(
                FieldCause(f"{path}.name", f"Duplicate value: {name!r}", "FieldValueDuplicate")
            )
        seen.add(str(name))
        causes.extend(_one_parameter_causes(path, param))
    return causes


def _one_parameter_causes(path: str, param: Mapping[str, Any]) -> list[FieldCause]:
    kind = param.get("parameterType")
    space = param.get("feasibleSpace") or {}
    if kind not in TYPES:
        return [
            FieldCause(
                f"{path}.parameterType",
                f"Unsupported value: {kind!r}: supported values: "
                + ", ".join(repr(t) for t in TYPES),
                "FieldValueNotSupported",
            )
        ]
    distribution = space.get("distribution") or "uniform"
    causes: list[FieldCause] = []
    if distribution not in DISTRIBUTIONS:
        causes.append(
            FieldCause(
                f"{path}.feasibleSpace.distribution",
                f"Unsupported value: {distribution!r}: supported values: "
                + ", ".join(repr(d) for d in DISTRIBUTIONS),
                "FieldValueNotSupported",
            )
        )
    if not any(space.get(k) not in (None, "", []) for k in ("min", "max", "step", "list")):
        return [
            *causes,
            FieldCause(
                f"{path}.feasibleSpace",
                "Required value: feasibleSpace "
                "must set min and max (double, int) or list (discrete, "
                "categorical)",
                "FieldValueRequired",
            ),
        ]
    if kind in ("double", "int"):
        return causes + _range_causes(path, kind, space, distribution)
    return causes + _list_causes(path, kind, space)


def _range_causes(path: str, kind: str, space: Mapping[str, Any], dist: str) -> list[FieldCause]:
    fs = f"{path}.feasibleSpace"
    causes: list[FieldCause] = []
    if space.get("list"):
        causes.append(
            FieldCause(
                f"{fs}.list",
                f"Forbidden: feasibleSpace.list is not "
                f"supported for parameterType {kind}; use min and max",
                "FieldValueForbidden",
            )
        )
    values: dict[str, Decimal] = {}
    for key in ("min", "max", "step"):
        text = space.get(key)
        if text in (None, ""):
            if key != "step":
                causes.append(
                    FieldCause(
                        f"{fs}.{key}",
                        f"Required value: feasibleSpace.{key} must be set for parameterType {kind}",
                        "FieldValueRequired",
                    )
                )
            continue
        number = _decimal(str(text))
        if kind == "int" and not str(text).strip().lstrip("+-").isdigit():
            number = None
        if number is None:
            wanted = 'an integer such as "3"' if kind == "int" else 'a number such as "0.01"'
            causes.append(FieldCause(f"{fs}.{key}", f"Invalid value: {text!r}: must be {wanted}"))
            continue
        values[key] = number
    low, high, step = values.get("min"), values.get("max"), values.get("step")
    if low is not None and high is not None and low > high:
        causes.append(
            FieldCause(
                f"{fs}.max",
                f"Invalid value: {space.get('max')!r}: must be "
                f">= feasibleSpace.min ({space.get('min')})",
            )
        )
    if step is not None and step <= 0:
        causes.append(
            FieldCause(f"{fs}.step", f"Invalid value: {space.get('step')!r}: must be > 0")
        )
    if dist in LOG_DISTRIBUTIONS and low is not None and low <= 0:
        causes.append(
            FieldCause(
                f"{fs}.min",
                f"Invalid value: {space.get('min')!r}: "
                f"distribution {dist} needs feasibleSpace.min > 0",
            )
        )
    return causes


def _list_causes(path: str, kind: str, space: Mapping[str, Any]) -> list[FieldCause]:
    fs = f"{path}.feasibleSpace"
    causes = [
        FieldCause(
            f"{fs}.{key}",
            f"Forbidden: feasibleSpace.{key} is not supported for parameterType {kind}; use list",
            "FieldValueForbidden",
        )
        for key in ("min", "max", "step")
        if space.get(key) not in (None, "")
    ]
    items = space.get("list") or []
    if not items:
        causes.append(
            FieldCause(
                f"{fs}.list",
                f"Required value: parameterType {kind} needs a non-empty feasibleSpace.list",
                "FieldValueRequired",
            )
        )
    if len({str(v) for v in items}) != len(items):
        causes.append(
            FieldCause(
                f"{fs}.list", "Duplicate value: list entries must be unique", "FieldValueDuplicate"
            )
        )
    if kind == "discrete":
        causes.extend(
            FieldCause(f"{fs}.list[{i}]", f"Invalid value: {v!r}: discrete values must be numbers")
            for i, v in enumerate(items)
            if _decimal(str(v)) is None
        )
    return causes


def _decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
