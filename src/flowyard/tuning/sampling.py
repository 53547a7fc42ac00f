"""Prior sampling of single parameters, shared by ``random``, ``sobol``, hyperband's and pbt's
initial populations.

Distributions follow Katib's hyperopt service: ``uniform`` and ``logUniform`` over
``[min, max]``; ``normal`` with mean ``(min+max)/2`` and standard deviation ``(max-min)/6``, and
``logNormal`` the same in log space. Unlike hyperopt, normal draws are truncated to
``[min, max]`` (resampled), so a suggestion never leaves the feasible space.
"""

from __future__ import annotations

import math

import numpy as np

from flowyard.tuning.space import Parameter, Value

_MAX_RESAMPLES = 64


def sample(param: Parameter, rng: np.random.Generator) -> Value:
    """One draw from the parameter's prior, typed and on its step grid."""
    if not param.is_numeric_range:
        return param.choices[int(rng.integers(len(param.choices)))]
    return param.snap(_draw(param, rng, rng.random()))


def from_unit(param: Parameter, u: float) -> Value:
    """Map ``u`` in [0, 1) onto the parameter (used by quasi-random sequences): evenly over the
    choices, the integers, the step grid, or the (log-)range."""
    u = min(max(u, 0.0), 1.0 - 1e-12)
    if not param.is_numeric_range:
        return param.choices[int(u * len(param.choices))]
    assert param.low is not None and param.high is not None
    if param.step or (param.type == "int" and not param.log):
        points = param.grid()
        return points[int(u * len(points))]
    low, high = float(param.low), float(param.high)
    if param.log:
        value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        value = low + u * (high - low)
    return param.snap(value)


def _draw(param: Parameter, rng: np.random.Generator, u: float) -> float:
    assert param.low is not None and param.high is not None
    low, high = float(param.low), float(param.high)
    if param.type == "int" and not param.step and not param.log:
        low, high = low - 0.5, high + 0.5  # every integer gets an equal share
    log = param.log
    lo, hi = (math.log(low), math.log(high)) if log else (low, high)
    if param.distribution in ("normal", "logNormal") and hi > lo:
        mean, sd = (lo + hi) / 2, (hi - lo) / 6
        for _ in range(_MAX_RESAMPLES):
            x = float(rng.normal(mean, sd))
            if lo <= x <= hi:
                return math.exp(x) if log else x
        x = min(max(mean, lo), hi)
    else:
        x = lo + u * (hi - lo)
    return math.exp(x) if log else x
