"""Search-space helpers for :func:`flowyard.tune`, in the style of ``kubeflow.katib.search``.

Each returns one Katib ``ParameterSpec`` without its name (``tune`` adds the dict key)::

    search.double(1e-4, 1e-1, log=True)     # parameterType double, distribution logUniform
    search.int(1, 8, step=1)
    search.categorical(["adam", "sgd"])
    search.discrete([16, 32, 64])

Bounds are written as Katib's strings (``str(value)``); the objective receives typed values.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

_DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")


def _space(
    kind: str, low: float, high: float, step: float | None, log: bool, distribution: str | None
) -> dict[str, Any]:
    if distribution is not None and distribution not in _DISTRIBUTIONS:
        raise ValueError(
            f"distribution must be one of {', '.join(_DISTRIBUTIONS)}, not {distribution!r}"
        )
    if log and distribution not in (None, "logUniform", "logNormal"):
        raise ValueError(f"log=True contradicts distribution={distribution!r}")
    feasible: dict[str, Any] = {"min": str(low), "max": str(high)}
    if step is not None:
        feasible["step"] = str(step)
    dist = distribution or ("logUniform" if log else None)
    if dist:
        feasible["distribution"] = dist
    return {"parameterType": kind, "feasibleSpace": feasible}


def double(
    min: float,
    max: float,
    step: float | None = None,
    *,
    log: bool = False,
    distribution: str | None = None,
) -> dict[str, Any]:
    """A float parameter in ``[min, max]`` (``log=True``: log-uniform)."""
    return _space("double", float(min), float(max), step, log, distribution)


def int(
    min: builtins.int,
    max: builtins.int,
    step: builtins.int | None = None,
    *,
    log: bool = False,
    distribution: str | None = None,
) -> dict[str, Any]:
    """An integer parameter in ``[min, max]``."""
    return _space("int", builtins.int(min), builtins.int(max), step, log, distribution)


def categorical(values: Sequence[str]) -> dict[str, Any]:
    """One of ``values`` (strings)."""
    return {"parameterType": "categorical", "feasibleSpace": {"list": [str(v) for v in values]}}


def discrete(values: Sequence[float]) -> dict[str, Any]:
    """One of the numbers ``values``."""
    return {"parameterType": "discrete", "feasibleSpace": {"list": [str(v) for v in values]}}
