"""``algorithmSettings`` and ``earlyStopping.algorithmSettings`` with Katib's setting names.

Each algorithm accepts the names Katib's suggestion service for it accepts (for ``tpe`` both the
hyperopt names Katib's default image uses and the Optuna names of Katib's Optuna image). Values
are strings in the spec; :func:`settings_causes` checks them at admission and
:func:`parse_settings` gives the typed values to the engines.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any

from flowyard.errors import FieldCause
from flowyard.tuning.space import SearchSpace

Check = Callable[[str], Any]
"""Parses one setting value; raises ValueError with the reason if it is invalid."""


def _int_at_least(low: int) -> Check:
    def check(text: str) -> int:
        value = int(text)
        if value < low:
            raise ValueError(f"must be an integer >= {low}")
        return value

    return check


def _float_in(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Check:
    def check(text: str) -> float:
        value = float(text)
        too_low = value <= low if open_low else value < low
        too_high = value >= high if open_high else value > high
        if math.isnan(value) or too_low or too_high:
            lo, hi = ("(" if open_low else "["), (")" if open_high else "]")
            raise ValueError(f"must be a number in {lo}{low}, {high}{hi}")
        return value

    return check


def _one_of(*options: str) -> Check:
    def check(text: str) -> str:
        if text not in options:
            raise ValueError("must be one of " + ", ".join(repr(o) for o in options))
        return text

    return check


def _text(text: str) -> str:
    if not text:
        raise ValueError("must not be empty")
    return text


_SEED = {"random_state": _int_at_least(0)}
_INF = math.inf

ALGORITHM_SETTINGS: dict[str, dict[str, Check]] = {
    "random": dict(_SEED),
    "grid": dict(_SEED),
    "tpe": {
        **_SEED,
        "n_startup_trials": _int_at_least(0),
        "n_ei_candidates": _int_at_least(1),
        "n_EI_candidates": _int_at_least(1),
        "gamma": _float_in(0, 1, open_low=True, open_high=True),
        "prior_weight": _float_in(0, _INF, open_low=True),
    },
    "multivariate-tpe": {
        **_SEED,
        "n_startup_trials": _int_at_least(0),
        "n_ei_candidates": _int_at_least(1),
    },
    "bayesianoptimization": {
        **_SEED,
        "base_estimator": _one_of("GP", "RF", "ET", "GBRT"),
        "n_initial_points": _int_at_least(0),
        "acq_func": _one_of("gp_hedge", "LCB", "EI", "PI", "EIps", "PIps"),
        "acq_optimizer": _one_of("auto", "sampling", "lbfgs"),
    },
    "cmaes": {
        **_SEED,
        "restart_strategy": _one_of("ipop", "bipop", "None", "none"),
        "sigma": _float_in(0, _INF),
    },
    "sobol": dict(_SEED),
    "hyperband": {
        "resource_name": _text,
        "r_l": _float_in(0, _INF, open_low=True),
        "eta": lambda text: int(float(text)),
    },
    "pbt": {
        **_SEED,
        "suggestion_trial_dir": _text,
        "n_population": _int_at_least(5),
        "truncation_threshold": _float_in(0, 1),
        "resample_probability": _float_in(0, 1),
    },
}
"""Accepted setting names per algorithm, each with its check."""

REQUIRED_SETTINGS: dict[str, tuple[str, ...]] = {
    "hyperband": ("resource_name", "r_l"),
    "pbt": ("suggestion_trial_dir", "n_population", "truncation_threshold"),
}

EARLY_STOPPING_SETTINGS: dict[str, dict[str, Check]] = {
    "medianstop": {"min_trials_required": _int_at_least(1), "start_step": _int_at_least(1)},
}

ALGORITHMS = tuple(ALGORITHM_SETTINGS)
EARLY_STOPPING_ALGORITHMS = tuple(EARLY_STOPPING_SETTINGS)


def settings_map(raw: object) -> dict[str, str]:
    """``[{name, value}]`` as a dict (later entries win, as a list-map would)."""
    if not isinstance(raw, list):
        return {}
    return {
        str(s.get("name")): str(s.get("value") if s.get("value") is not None else "")
        for s in raw
        if isinstance(s, dict)
    }


def parse_settings(table: Mapping[str, Check], raw: object) -> dict[str, Any]:
    """Typed settings; assumes :func:`settings_causes` found nothing."""
    return {name: table[name](value) for name, value in settings_map(raw).items() if name in table}


def _table_causes(
    path: str, table: Mapping[str, Check], raw: object, algorithm: str
) -> list[FieldCause]:
    causes: list[FieldCause] = []
    for index, entry in enumerate(raw if isinstance(raw, list) else []):
        name = str((entry or {}).get("name") or "")
        value = str((entry or {}).get("value") if (entry or {}).get("value") is not None else "")
        field = f"{path}[{index}]"
        if name not in table:
            close = difflib.get_close_matches(name, list(table), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            known = ", ".join(table) or "none"
            causes.append(
                FieldCause(
                    f"{field}.name",
                    f"Unsupported value: {name!r}: unknown "
                    f"setting for algorithm {algorithm}{hint}; known: {known}",
                    "FieldValueNotSupported",
                )
            )
            continue
        try:
            table[name](value)
        except ValueError as exc:
            reason = str(exc) if "must" in str(exc) else "must be a number"
            causes.append(
                FieldCause(f"{field}.value", f"Invalid value: {value!r}: {name} {reason}")
            )
    return causes


def algorithm_causes(spec: Mapping[str, Any], space: SearchSpace | None) -> list[FieldCause]:
    """Problems of ``spec.algorithm`` (name, settings, and the rules that tie settings to the
    search space and the budget). ``space`` is None when ``spec.parameters`` is invalid."""
    algorithm = spec.get("algorithm") or {}
    name = algorithm.get("algorithmName")
    path = "spec.algorithm"
    if not name:
        return [
            FieldCause(
                f"{path}.algorithmName",
                "Required value: one of " + ", ".join(ALGORITHMS),
                "FieldValueRequired",
            )
        ]
    if name not in ALGORITHM_SETTINGS:
        close = difflib.get_close_matches(str(name), ALGORITHMS, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        return [
            FieldCause(
                f"{path}.algorithmName",
                f"Unsupported value: {name!r}{hint}: supported values: " + ", ".join(ALGORITHMS),
                "FieldValueNotSupported",
            )
        ]
    raw = algorithm.get("algorithmSettings")
    causes = _table_causes(f"{path}.algorithmSettings", ALGORITHM_SETTINGS[name], raw, name)
    given = settings_map(raw)
    causes.extend(
        FieldCause(
            f"{path}.algorithmSettings",
            f"Required value: algorithm {name} needs the setting {req!r}",
            "FieldValueRequired",
        )
        for req in REQUIRED_SETTINGS.get(name, ())
        if req not in given
    )
    if causes or space is None:
        return causes
    settings = parse_settings(ALGORITHM_SETTINGS[name], raw)
    return _cross_causes(str(name), settings, spec, space)


def _cross_causes(
    name: str, settings: Mapping[str, Any], spec: Mapping[str, Any], space: SearchSpace
) -> list[FieldCause]:
    if name == "cmaes" and sum(p.is_numeric_range for p in space.parameters) < 2:
        return [
            FieldCause(
                "spec.algorithm.algorithmName",
                'Invalid value: "cmaes": CMA-ES '
                "needs at least two double or int parameters in spec.parameters",
            )
        ]
    if name == "grid":
        return _grid_causes(spec, space)
    if name == "hyperband":
        return _hyperband_causes(settings, spec, space)
    return []


def _grid_causes(spec: Mapping[str, Any], space: SearchSpace) -> list[FieldCause]:
    causes = [
        FieldCause(
            f"spec.parameters[{i}].feasibleSpace.step",
            "Required value: the grid "
            "algorithm needs feasibleSpace.step for every double parameter",
            "FieldValueRequired",
        )
        for i, p in enumerate(space.parameters)
        if p.type == "double" and not p.step
    ]
    if causes:
        return causes
    size = space.grid_size()
    max_trials = spec.get("maxTrialCount")
    if isinstance(max_trials, int) and max_trials > size:
        causes.append(
            FieldCause(
                "spec.maxTrialCount",
                f"Invalid value: {max_trials}: the grid "
                f"has only {size} points; set maxTrialCount <= {size}",
            )
        )
    return causes


def hyperband_shape(settings: Mapping[str, Any]) -> tuple[int, int]:
    """``(eta, s_max)`` as Katib derives them (``eta`` <= 0 means the default 3)."""
    eta = int(settings.get("eta", 3))
    if eta <= 1:
        eta = 3 if eta <= 0 else eta
    r_l = float(settings["r_l"])
    s_max = int(math.log(r_l) / math.log(eta)) if eta > 1 and r_l >= 1 else 0
    return eta, s_max


def _hyperband_causes(
    settings: Mapping[str, Any], spec: Mapping[str, Any], space: SearchSpace
) -> list[FieldCause]:
    path = "spec.algorithm.algorithmSettings"
    causes: list[FieldCause] = []
    resource = settings["resource_name"]
    param = space.by_name.get(resource)
    if param is None:
        causes.append(
            FieldCause(
                path,
                f"Invalid value: resource_name {resource!r} must name "
                "a parameter in spec.parameters",
            )
        )
    elif not param.is_numeric_range:
        causes.append(
            FieldCause(
                path,
                f"Invalid value: resource_name {resource!r} must name an int or double parameter",
            )
        )
    if int(settings.get("eta", 3)) == 1:
        causes.append(FieldCause(path, "Invalid value: eta must be >= 2 (or unset for 3)"))
        return causes
    eta, s_max = hyperband_shape(settings)
    needed = math.ceil(eta**s_max)
    parallel = spec.get("parallelTrialCount")
    if isinstance(parallel, int) and parallel < needed:
        causes.append(
            FieldCause(
                "spec.parallelTrialCount",
                f"Invalid value: {parallel}: "
                f"hyperband with eta={eta} and r_l={settings['r_l']} runs "
                f"{needed} trials at once; set parallelTrialCount >= {needed}",
            )
        )
    return causes


def early_stopping_causes(spec: Mapping[str, Any]) -> list[FieldCause]:
    early = spec.get("earlyStopping")
    if early is None:
        return []
    path = "spec.earlyStopping"
    name = (early or {}).get("algorithmName")
    if name not in EARLY_STOPPING_SETTINGS:
        return [
            FieldCause(
                f"{path}.algorithmName",
                f"Unsupported value: {name!r}: supported "
                "values: " + ", ".join(EARLY_STOPPING_ALGORITHMS),
                "FieldValueNotSupported",
            )
        ]
    return _table_causes(
        f"{path}.algorithmSettings",
        EARLY_STOPPING_SETTINGS[name],
        early.get("algorithmSettings"),
        name,
    )
