"""Kubernetes resource quantities ("500m", "2", "1Gi", "1e3") and container resources.

The grammar is Kubernetes' ``resource.Quantity``: an optionally signed decimal number followed by
at most one suffix, either binary SI (``Ki Mi Gi Ti Pi Ei``, powers of 1024), decimal SI
(``n u m k M G T P E``, powers of 1000; ``k`` is lower case, ``m`` is milli) or a decimal exponent
(``e3``, ``E-2``). YAML often gives plain numbers (``cpu: 2``, ``memory: 1e9``); those are accepted
as well. Values are exact (``decimal.Decimal``) until the final conversion:

* CPU becomes cores as a float (``"500m"`` -> 0.5);
* memory becomes bytes as an int, rounded up like Kubernetes' ``Quantity.Value()``;
* GPUs (``nvidia.com/gpu``) must be whole numbers, as for every Kubernetes extended resource.

Any bad value raises :class:`~flowyard.errors.InvalidError` whose cause names the field and value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from flowyard.errors import FieldCause, InvalidError

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<decimal>[numkMGTPE])|[eE](?P<exponent>[+-]?\d{1,3}))?$"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
# Kubernetes keeps quantities within int64 (and cpu at milli precision); anything above this is a
# typo, and refusing it keeps absurd exponents from building enormous integers.
_MAX_VALUE = Decimal(2**63 - 1)
_MAX_EXPONENT = 30

GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Resources:
    """What a process needs: CPU cores (fractions allowed), memory in bytes, whole GPUs."""

    cpu: float = 0.0
    memory: int = 0
    gpu: int = 0

    def fits_in(self, free: Resources) -> bool:
        return self.cpu <= free.cpu + 1e-9 and self.memory <= free.memory and self.gpu <= free.gpu

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory + other.memory, self.gpu + other.gpu)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu - other.cpu, self.memory - other.memory, self.gpu - other.gpu)


def _invalid(field: str, value: object, why: str) -> InvalidError:
    message = f"{field}: invalid quantity {value!r}: {why}"
    return InvalidError(message, causes=[FieldCause(field=field, message=message)])


def parse_quantity(value: str | int | float, *, field: str = "quantity") -> Decimal:
    """The exact value of a Kubernetes quantity (``"1Gi"`` -> 1073741824)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _invalid(field, value, "expected a string such as '500m' or '1Gi', or a number")
    if isinstance(value, int | float):
        try:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - repr of a float always parses
            raise _invalid(field, value, "not a number") from exc
        if not number.is_finite():
            raise _invalid(field, value, "must be a finite number")
        return _bounded(number, field, value)
    match = _QUANTITY.match(value)
    if match is None:
        raise _invalid(
            field,
            value,
            "expected a number with an optional suffix (m, k, M, G, Ki, Mi, Gi, ... or e<N>), "
            "for example '500m', '2', '512Mi' or '1e3'",
        )
    number = Decimal(match["number"])
    if match["binary"]:
        number *= Decimal(1024) ** _BINARY[match["binary"]]
    elif match["decimal"]:
        number = number.scaleb(_DECIMAL[match["decimal"]])
    elif match["exponent"]:
        exponent = int(match["exponent"])
        if abs(exponent) > _MAX_EXPONENT:
            raise _invalid(field, value, f"exponent {exponent} is out of range")
        number = number.scaleb(exponent)
    return _bounded(number, field, value)


def _bounded(number: Decimal, field: str, value: object) -> Decimal:
    if abs(number) > _MAX_VALUE:
        raise _invalid(field, value, "too large")
    return number


def _non_negative(value: str | int | float, field: str) -> Decimal:
    number = parse_quantity(value, field=field)
    if number < 0:
        raise _invalid(field, value, "must not be negative")
    return number


def cpu_cores(value: str | int | float, *, field: str = "cpu") -> float:
    """CPU cores: ``"500m"`` -> 0.5, ``"2"`` -> 2.0."""
    return float(_non_negative(value, field))


def memory_bytes(value: str | int | float, *, field: str = "memory") -> int:
    """Memory in bytes, rounded up: ``"1Gi"`` -> 1073741824, ``"1G"`` -> 1000000000."""
    return int(_non_negative(value, field).to_integral_value(rounding=ROUND_CEILING))


def whole_count(value: str | int | float, *, field: str) -> int:
    """A whole, non-negative count (extended resources such as GPUs cannot be fractional)."""
    number = _non_negative(value, field)
    if number != number.to_integral_value():
        raise _invalid(field, value, "must be a whole number (extended resources cannot be split)")
    return int(number)


def resources_from_kubernetes(
    requests: Mapping[str, Any] | None,
    limits: Mapping[str, Any] | None,
    *,
    field: str = "resources",
) -> Resources:
    """The executor :class:`Resources` for a container's ``resources`` block.

    Each of ``cpu``, ``memory`` and ``nvidia.com/gpu`` is taken from ``requests`` and falls back to
    ``limits`` (Kubernetes defaults a missing request to its limit). Other resource names
    (``ephemeral-storage``, ``hugepages-*``) are accepted and ignored. ``field`` is the path of
    the ``resources`` block, used in error causes (``spec.containers[0].resources``).
    """
    requests = requests or {}
    limits = limits or {}

    def pick(name: str) -> tuple[Any, str] | None:
        if name in requests and requests[name] is not None:
            return requests[name], f"{field}.requests.{name}"
        if name in limits and limits[name] is not None:
            return limits[name], f"{field}.limits.{name}"
        return None

    cpu = pick("cpu")
    memory = pick("memory")
    gpu = pick(GPU_RESOURCE)
    return Resources(
        cpu=cpu_cores(cpu[0], field=cpu[1]) if cpu else 0.0,
        memory=memory_bytes(memory[0], field=memory[1]) if memory else 0,
        gpu=whole_count(gpu[0], field=gpu[1]) if gpu else 0,
    )


__all__ = [
    "GPU_RESOURCE",
    "cpu_cores",
    "memory_bytes",
    "parse_quantity",
    "resources_from_kubernetes",
    "whole_count",
]
