"""Suggestion engines: typed in-bounds suggestions, exact grids, restart without duplicates,
hyperband's schedule, pbt's generations."""

from __future__ import annotations

import copy
import itertools
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flowyard.errors import InvalidError
from flowyard.resources.admission import admit
from flowyard.resources.registry import KindRegistry
from flowyard.tuning import hyperband, pbt
from flowyard.tuning.algorithms import build_engine
from flowyard.tuning.engine import (
    Suggestion,
    SuggestionEndReached,
    SuggestionEngine,
    TrialRecord,
    TrialState,
)
from flowyard.tuning.space import SearchSpace

from .conftest import EXAMPLE_FILES, load_example

MIXED_PARAMETERS = [
    {
        "name": "lr",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.0001", "max": "0.1", "distribution": "logUniform"},
    },
    {"name": "layers", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "5"}},
    {
        "name": "batch",
        "parameterType": "int",
        "feasibleSpace": {"min": "16", "max": "128", "distribution": "logUniform"},
    },
    {
        "name": "dropout",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.0", "max": "0.5", "step": "0.1"},
    },
    {
        "name": "width",
        "parameterType": "double",
        "feasibleSpace": {"min": "1", "max": "3", "distribution": "normal"},
    },
    {"name": "units", "parameterType": "discrete", "feasibleSpace": {"list": ["32", "64", "128"]}},
    {
        "name": "optimizer",
        "parameterType": "categorical",
        "feasibleSpace": {"list": ["sgd", "adam", "rmsprop"]},
    },
]
SETTINGS: dict[str, list[dict[str, str]]] = {
    "hyperband": [
        {"name": "resource_name", "value": "layers"},
        {"name": "r_l", "value": "9"},
        {"name": "eta", "value": "3"},
    ],
    "pbt": [
        {"name": "suggestion_trial_dir", "value": "checkpoints"},
        {"name": "n_population", "value": "5"},
        {"name": "truncation_threshold", "value": "0.4"},
    ],
}
ALGORITHMS = [
    "random",
    "tpe",
    "multivariate-tpe",
    "bayesianoptimization",
    "cmaes",
    "sobol",
    "hyperband",
    "pbt",
]


def spec_for(algorithm: str, parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": algorithm, "algorithmSettings": SETTINGS.get(algorithm, [])},
        "parallelTrialCount": 9,
        "maxTrialCount": 40,
        "parameters": copy.deepcopy(parameters or MIXED_PARAMETERS),
    }


def toy_loss(values: dict[str, Any]) -> float:
    return (
        (math.log10(float(values["lr"])) + 2.5) ** 2
        + float(values["dropout"])
        + 0.1 * int(values["layers"])
    )


def run(
    engine: SuggestionEngine,
    rounds: int,
    batch: int,
    objective: Callable[[dict[str, Any]], float] = toy_loss,
    history: list[TrialRecord] | None = None,
) -> list[TrialRecord]:
    """Drive ``engine`` like the controller: suggest, run every suggestion, record results."""
    history = history if history is not None else []
    for _ in range(rounds):
        try:
            batch_out = engine.suggest(batch, history)
        except SuggestionEndReached:
            break
        for s in batch_out:
            engine.prepare(s)
            name = s.name or f"t{len(history)}"
            history.append(
                TrialRecord(
                    name, s.assignments, TrialState.SUCCEEDED, objective(s.values), s.labels
                )
            )
    return history


def check_typed_in_bounds(
    space: SearchSpace, suggestion: Suggestion, unbounded: tuple[str, ...] = ()
) -> None:
    assert set(suggestion.values) == set(space.names)
    for param in space.parameters:
        value = suggestion.values[param.name]
        expected = {"double": float, "int": int, "categorical": str}.get(param.type)
        if expected:
            assert type(value) is expected, (param.name, value)
        if param.name not in unbounded:
            assert param.contains(value), (param.name, value)
        assert suggestion.assignments[param.name] == param.format(value)
        assert param.parse(suggestion.assignments[param.name]) == value
    assert space.parse(suggestion.assignments, unbounded) == suggestion.values


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_suggestions_are_typed_and_in_bounds(algorithm: str) -> None:
    if algorithm == "bayesianoptimization":
        pytest.importorskip("torch")  # Optuna's GP sampler runs on torch (extra tuning-gp)
    spec = spec_for(algorithm)
    engine = build_engine(spec, uid="uid-1", name="exp")
    history = run(engine, rounds=5 if algorithm != "bayesianoptimization" else 3, batch=3)
    assert len(history) >= 3
    unbounded = ("layers",) if algorithm == "hyperband" else ()
    for record in history:
        check_typed_in_bounds(
            engine.space, engine.make(engine.space.parse(record.assignments, unbounded)), unbounded
        )
    dropout = {float(r.assignments["dropout"]) for r in history}
    assert dropout <= {0.0, 0.1, 0.2, 0.3, 0.4, 0.5}  # on the step grid, no float noise


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_every_katib_example_produces_suggestions(registry: KindRegistry, path: Path) -> None:
    obj = load_example(path)
    admit(obj, None, registry)
    if obj["spec"]["algorithm"]["algorithmName"] == "bayesianoptimization":
        pytest.importorskip("torch")
    engine = build_engine(obj["spec"], uid="u", name=obj["metadata"]["name"])
    resource = (engine.context.settings.get("resource_name"),)
    count = obj["spec"]["parallelTrialCount"]
    first = engine.suggest(count, [])
    assert len(first) == count
    for s in first:
        check_typed_in_bounds(engine.space, s, tuple(x for x in resource if x))


def test_grid_enumerates_exactly_then_ends() -> None:
    params = [
        {
            "name": "lr",
            "parameterType": "double",
            "feasibleSpace": {"min": "0.01", "max": "0.05", "step": "0.005"},
        },
        {
            "name": "n",
            "parameterType": "int",
            "feasibleSpace": {"min": "1", "max": "7", "step": "3"},
        },
        {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b"]}},
    ]
    engine = build_engine(spec_for("grid", params), uid="g")
    history = run(engine, rounds=100, batch=4, objective=lambda v: float(v["lr"]))
    got = [tuple(r.assignments.values()) for r in history]
    lrs = ["0.01", "0.015", "0.02", "0.025", "0.03", "0.035", "0.04", "0.045", "0.05"]
    expected = list(itertools.product(lrs, ["1", "4", "7"], ["a", "b"]))
    assert got == expected
    with pytest.raises(SuggestionEndReached):
        engine.suggest(1, history)


def test_grid_restart_continues_without_repeats() -> None:
    spec = spec_for(
        "grid",
        [
            {"name": "a", "parameterType": "int", "feasibleSpace": {"min": "0", "max": "4"}},
            {"name": "b", "parameterType": "discrete", "feasibleSpace": {"list": ["1", "2.5"]}},
        ],
    )
    spec["maxTrialCount"] = 10
    history = run(build_engine(spec, uid="g"), rounds=2, batch=3, objective=lambda v: 1.0)
    history[1].state = TrialState.FAILED  # a failed point is not retried either
    history = run(
        build_engine(spec, uid="g"), rounds=10, batch=3, objective=lambda v: 1.0, history=history
    )
    keys = [tuple(r.assignments.values()) for r in history]
    assert len(keys) == 10 == len(set(keys))
    assert {
        type(v) for r in history for v in build_engine(spec).space.parse(r.assignments).values()
    } == {int, float}


@pytest.mark.parametrize("algorithm", ["random", "tpe", "multivariate-tpe", "cmaes", "sobol"])
def test_restart_rebuilds_study_without_duplicates(algorithm: str) -> None:
    spec = spec_for(algorithm)
    history = run(build_engine(spec, uid="r"), rounds=6, batch=2)
    # pending (handed out, not yet finished) records survive a restart too
    first = build_engine(spec, uid="r")
    pending = first.suggest(2, history)
    history += [
        TrialRecord(f"p{i}", s.assignments, TrialState.RUNNING) for i, s in enumerate(pending)
    ]
    # the same history gives the same suggestions (a crash before persisting repeats nothing)
    again = build_engine(spec, uid="r").suggest(2, history)
    assert [s.assignments for s in again] == [
        s.assignments for s in build_engine(spec, uid="r").suggest(2, history)
    ]
    restarted = build_engine(spec, uid="r")
    history = run(restarted, rounds=6, batch=2, history=history)
    keys = [tuple(sorted(r.assignments.items())) for r in history]
    assert len(keys) == len(set(keys)) == 26


def test_cached_engine_matches_history_and_survives_dropped_suggestions() -> None:
    spec = spec_for("tpe")
    engine = build_engine(spec, uid="c")
    history = run(engine, rounds=4, batch=3)
    engine.suggest(3, history)  # handed out but dropped by the caller
    more = engine.suggest(2, history)
    assert len(more) == 2
    states = [t.state.name for t in engine._study.trials]  # type: ignore[attr-defined]
    assert states.count("RUNNING") == 2 and states.count("COMPLETE") == 12


def test_tpe_beats_random_on_a_smooth_problem() -> None:
    params = [
        {"name": f"x{i}", "parameterType": "double", "feasibleSpace": {"min": "-5", "max": "5"}}
        for i in range(3)
    ]

    def sphere(v: dict[str, Any]) -> float:
        return sum(float(x) ** 2 for x in v.values())

    best: dict[str, list[float]] = {"random": [], "tpe": []}
    for algorithm, seed in itertools.product(best, range(5)):
        history = run(
            build_engine(spec_for(algorithm, params), uid=f"s{seed}"),
            rounds=40,
            batch=1,
            objective=sphere,
        )
        best[algorithm].append(min(r.objective or math.inf for r in history))
    assert statistics.median(best["tpe"]) < statistics.median(best["random"])


def test_maximize_is_respected() -> None:
    params = [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}]
    spec = spec_for("tpe", params)
    spec["objective"]["type"] = "maximize"
    history = run(
        build_engine(spec, uid="m"), rounds=40, batch=1, objective=lambda v: float(v["x"])
    )
    assert sorted(float(r.assignments["x"]) for r in history[-10:])[5] > 0.6


def test_hyperband_schedule_matches_katib() -> None:
    rungs = hyperband.schedule(9, 3, 2)
    assert [(r.bracket, r.index, r.size, r.budget) for r in rungs] == [
        (2, 0, 9, 1),
        (2, 1, 3, 3),
        (2, 2, 1, 9),
        (1, 0, 5, 3),
        (1, 1, 2, 9),
        (0, 0, 3, 9),
    ]


def test_hyperband_promotes_the_best_and_waits_for_rungs() -> None:
    engine = build_engine(spec_for("hyperband"), uid="h")
    first = engine.suggest(20, [])
    assert len(first) == 9 and {s.values["layers"] for s in first} == {1}
    history = [
        TrialRecord(f"a{i}", s.assignments, TrialState.RUNNING, labels=s.labels)
        for i, s in enumerate(first)
    ]
    assert engine.suggest(5, history) == []  # rung 0 still running
    for i, record in enumerate(history):
        record.state, record.objective = TrialState.SUCCEEDED, float(i)
    history[0].state = TrialState.FAILED
    promoted = engine.suggest(5, history)
    assert [s.labels[hyperband.LABEL_PARENT] for s in promoted] == ["a1", "a2", "a3"]
    assert {s.values["layers"] for s in promoted} == {3}
    assert promoted[0].values["lr"] == engine.space.parse(history[1].assignments)["lr"]
    # after a restart the same state gives the same promotions
    assert [
        s.assignments for s in build_engine(spec_for("hyperband"), uid="h").suggest(5, history)
    ] == [s.assignments for s in promoted]
    history = run(engine, rounds=50, batch=4, history=history)
    with pytest.raises(SuggestionEndReached):
        engine.suggest(1, history)
    assert len(history) == 9 + 3 + 1 + 5 + 2 + 3


def test_pbt_generations_checkpoints_and_restart(tmp_path: Path) -> None:
    spec = spec_for("pbt")
    spec["algorithm"]["algorithmSettings"][0]["value"] = str(tmp_path / "ckpt")
    engine = build_engine(spec, uid="p", name="exp")
    gen0 = engine.suggest(10, [])
    assert len(gen0) == 5 and all(s.labels[pbt.LABEL_GENERATION] == "0" for s in gen0)
    assert [s.name for s in gen0] == [f"exp-g0-{i}" for i in range(5)]
    history = []
    for i, s in enumerate(gen0):
        directory = engine.prepare(s)
        assert directory is not None and directory.is_dir()
        (directory / "weights").write_text(f"trial {i}")
        history.append(
            TrialRecord(s.name or "", s.assignments, TrialState.SUCCEEDED, float(i), s.labels)
        )
    history[4].state = TrialState.FAILED
    retry = engine.suggest(5, history)
    assert len(retry) == 1 and retry[0].assignments == gen0[4].assignments
    history[4].state = TrialState.SUCCEEDED
    gen1 = build_engine(spec, uid="p", name="exp").suggest(10, history)  # fresh engine
    assert len(gen1) == 5 and all(s.labels[pbt.LABEL_GENERATION] == "1" for s in gen1)
    parents = [s.labels[pbt.LABEL_PARENT] for s in gen1]
    assert set(parents) <= {r.name for r in history}
    # the two worst (truncation 0.4 of 5) exploit one of the two best: copy its checkpoint
    exploit = [s for s in gen1 if s.labels[pbt.LABEL_PARENT] in ("exp-g0-0", "exp-g0-1")]
    assert len(exploit) >= 2
    target = engine.prepare(gen1[0])
    parent_index = int(gen1[0].labels[pbt.LABEL_PARENT].rsplit("-", 1)[1])
    assert target is not None and (target / "weights").read_text() == f"trial {parent_index}"


def test_build_engine_rejects_invalid_spec() -> None:
    spec = spec_for("grid")
    with pytest.raises(InvalidError) as info:
        build_engine(spec)
    assert any(c.field.startswith("spec.parameters") for c in info.value.causes)
