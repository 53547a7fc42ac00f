"""flowyard's ``tpe`` engine is Optuna's TPESampler by construction: driven one suggestion at a
time it returns exactly what ``TPESampler(seed=random_state)`` returns in an ask/tell loop; a
rebuilt engine (restart) continues without replaying earlier assignments."""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna

from flowyard.tuning.algorithms import build_engine
from flowyard.tuning.engine import TrialRecord, TrialState


def _spec(seed: int | None) -> dict[str, Any]:
    settings = [] if seed is None else [{"name": "random_state", "value": str(seed)}]
    return {
        "objective": {"type": "minimize", "objectiveMetricName": "f"},
        "algorithm": {"algorithmName": "tpe", "algorithmSettings": settings},
        "parameters": [
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-5", "max": "10"}},
            {
                "name": "lr",
                "parameterType": "double",
                "feasibleSpace": {"min": "0.0001", "max": "0.1", "distribution": "logUniform"},
            },
            {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "8"}},
            {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b"]}},
        ],
    }


def _f(v: dict[str, Any]) -> float:
    return (v["x"] - 1) ** 2 + (math.log10(v["lr"]) + 2) ** 2 + abs(v["n"] - 3) + (v["opt"] == "b")


def _optuna_values(seed: int, trials: int) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    out = []
    for _ in range(trials):
        trial = study.ask()
        values = {
            "x": trial.suggest_float("x", -5, 10),
            "lr": trial.suggest_float("lr", 0.0001, 0.1, log=True),
            "n": trial.suggest_int("n", 1, 8),
            "opt": trial.suggest_categorical("opt", ["a", "b"]),
        }
        study.tell(trial, _f(values))
        out.append(values)
    return out


def _drive(engine: Any, history: list[TrialRecord], trials: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(trials):
        suggestion = engine.suggest(1, history)[0]
        history.append(
            TrialRecord(
                f"t{len(history)}",
                suggestion.assignments,  # Katib strings, as the controller stores them
                TrialState.SUCCEEDED,
                _f(suggestion.values),
            )
        )
        out.append(suggestion.values)
    return out


def test_tpe_is_optuna_tpe_seed_for_seed() -> None:
    for seed in (0, 7):
        ours = _drive(build_engine(_spec(seed), uid="u"), [], 24)  # 10 startup + 14 TPE
        assert ours == _optuna_values(seed, 24)


def test_rebuilt_engine_replays_nothing_and_is_deterministic() -> None:
    history: list[TrialRecord] = []
    first = _drive(build_engine(_spec(None), uid="uid-1"), history, 4)
    history.append(TrialRecord("pending", {"x": "0.5", "lr": "0.01", "n": "2", "opt": "a"}))
    again = [build_engine(_spec(None), uid="uid-1").suggest(3, history) for _ in range(2)]
    assert [s.values for s in again[0]] == [s.values for s in again[1]]
    handed_out = [tuple(sorted(v.items())) for v in first] + [
        tuple(sorted(s.values.items())) for s in again[0]
    ]
    assert len(set(handed_out)) == len(handed_out)
    # A fresh study (empty history) starts the seed's stream; a rebuilt one does not replay it.
    fresh = build_engine(_spec(None), uid="uid-1").suggest(3, [])
    assert [s.values["x"] for s in fresh][:1] == [first[0]["x"]]
    assert not {s.values["x"] for s in again[0]} & {v["x"] for v in first}
