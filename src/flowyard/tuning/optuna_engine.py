"""Model-based algorithms on Optuna 5: ``tpe``, ``multivariate-tpe``, ``bayesianoptimization``
(Optuna's Gaussian-process sampler) and ``cmaes``.

The engine keeps an in-memory Optuna study and syncs it with the history on every call: a record
it handed out is matched to its Optuna trial by name (or, the first time, by assignment) and
told its result; a record it has never seen (after a restart) is added as a finished or running
trial, so a fresh engine refits on exactly what the store holds.

Seeding. An engine that starts with an empty history creates its sampler once, seeded with
``random_state`` (or a seed derived from the experiment uid), and keeps it: driven one
suggestion at a time, ``tpe`` then returns exactly what ``optuna.samplers.TPESampler(seed=...)``
returns in an ask/tell loop (same model, same random stream; ``benchmarks/tuning.py`` checks
this seed for seed). An engine built over a non-empty history (a control-plane restart, a
changed spec) seeds its sampler from the seed and the number of records instead, so it does not
replay the first random startup points (no duplicate assignments) and repeating that call with
the same history gives the same suggestions.

``tpe`` and ``multivariate-tpe`` are both Optuna's multivariate TPE with the constant liar
(running trials count as bad results, so a parallel batch spreads out) — in Optuna 5 that is
what a plain ``TPESampler()`` is. Katib's default ``tpe`` image runs hyperopt's independent TPE
instead, and its Optuna image's ``tpe`` the independent Optuna TPE. (Parameter grouping would
change nothing: every trial has every parameter.)
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState

from flowyard.tuning.engine import (
    EngineContext,
    Suggestion,
    SuggestionEngine,
    TrialRecord,
    TrialState,
)
from flowyard.tuning.space import Parameter, Value

optuna.logging.set_verbosity(logging.WARNING)  # Optuna logs every trial at INFO otherwise


def distribution(param: Parameter) -> BaseDistribution:
    """The Optuna distribution of a parameter. ``normal``/``logNormal`` become the (log-)range:
    Optuna's samplers have no normal prior; the feasible space is the same."""
    if not param.is_numeric_range:
        return CategoricalDistribution(list(param.choices))
    assert param.low is not None and param.high is not None
    if param.type == "int":
        step = int(param.step or 1)
        if param.log:
            return IntDistribution(int(param.low), int(param.high), log=True)
        high = int(param.low) + (int(param.high) - int(param.low)) // step * step
        return IntDistribution(int(param.low), high, step=step)
    if param.step and not param.log:
        low, width = Decimal(str(param.low)), Decimal(param.step_text)
        span = (Decimal(str(param.high)) - low) // width * width  # keep high on the step grid
        return FloatDistribution(float(low), float(low + span), step=float(width))
    return FloatDistribution(float(param.low), float(param.high), log=param.log)


class _FixedSpaceTPE(optuna.samplers.TPESampler):
    """Multivariate TPE over the experiment's fixed search space.

    Every trial asks for the same parameters, so the intersection search space Optuna would
    recompute over all past trials on each call (a third of the time at 1000 trials) is known
    up front. It is given as Optuna computes it (sorted by name, single-valued distributions
    left out), so the sampler draws exactly as a plain ``TPESampler`` does."""

    def __init__(self, space: Mapping[str, BaseDistribution], **kwargs: Any) -> None:
        super().__init__(multivariate=True, **kwargs)
        self._fixed_space = {n: d for n, d in sorted(space.items()) if not d.single()}

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._fixed_space)


def _sampler_factory(
    context: EngineContext, space: Mapping[str, BaseDistribution]
) -> Callable[[int], optuna.samplers.BaseSampler]:
    settings = context.settings
    name = context.algorithm
    if name in ("tpe", "multivariate-tpe"):
        kwargs: dict[str, Any] = {"constant_liar": True}
        if "n_startup_trials" in settings:
            kwargs["n_startup_trials"] = settings["n_startup_trials"]
        candidates = settings.get("n_ei_candidates", settings.get("n_EI_candidates"))
        if candidates is not None:
            kwargs["n_ei_candidates"] = candidates
        if "prior_weight" in settings:
            kwargs["prior_weight"] = settings["prior_weight"]
        if "gamma" in settings:
            fraction = float(settings["gamma"])
            kwargs["gamma"] = lambda n: min(int(fraction * n) + 1, 25)
        return lambda seed: _FixedSpaceTPE(space, seed=seed, **kwargs)
    if name == "bayesianoptimization":
        startup = int(settings.get("n_initial_points", 10))
        return lambda seed: optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    if name == "cmaes":
        sigma = settings.get("sigma")
        sigma0 = float(sigma) if sigma else None
        return lambda seed: optuna.samplers.CmaEsSampler(
            seed=seed, sigma0=sigma0, warn_independent_sampling=False
        )
    raise ValueError(f"no Optuna sampler for algorithm {name!r}")


_TERMINAL = {
    TrialState.SUCCEEDED: OptunaState.COMPLETE,
    TrialState.EARLY_STOPPED: OptunaState.PRUNED,
    TrialState.FAILED: OptunaState.FAIL,
    TrialState.KILLED: OptunaState.FAIL,
    TrialState.METRICS_UNAVAILABLE: OptunaState.FAIL,
}


class OptunaEngine(SuggestionEngine):
    """One Optuna study per experiment, rebuilt from the history when the engine is new."""

    def __init__(self, context: EngineContext) -> None:
        super().__init__(context)
        self._distributions = {p.name: distribution(p) for p in self.space.parameters}
        self._new_sampler = _sampler_factory(context, self._distributions)
        direction = StudyDirection.MAXIMIZE if context.maximize else StudyDirection.MINIMIZE
        with _quiet():
            self._study = optuna.create_study(
                direction=direction, sampler=self._new_sampler(self._base_seed())
            )
        self._seeded = False
        self._number_by_name: dict[str, int] = {}
        self._finished: set[str] = set()
        self._unbound: dict[tuple[str, ...], list[int]] = {}
        self._count = 0

    def suggest(self, count: int, history: Sequence[TrialRecord]) -> list[Suggestion]:
        with _quiet():
            if not self._seeded:  # see the module docstring: one sampler per engine
                if history:
                    self._study.sampler = self._new_sampler(self.context.seed(len(history)))
                self._seeded = True
            self._sync(history)
            return [self._ask() for _ in range(count)]

    def _base_seed(self) -> int:
        """``random_state`` itself (as ``TPESampler(seed=random_state)``), else one derived
        from the experiment uid."""
        state = self.context.settings.get("random_state")
        return int(state) % (1 << 32) if state is not None else self.context.seed()

    def _ask(self) -> Suggestion:
        trial = self._study.ask(fixed_distributions=self._distributions)
        self._count += 1
        values: dict[str, Value] = {}
        for param in self.space.parameters:
            raw = trial.params[param.name]
            values[param.name] = param.snap(raw) if param.is_numeric_range else raw
        suggestion = self.make(values)
        self._unbound.setdefault(self.space.key(values), []).append(trial.number)
        return suggestion

    def _sync(self, history: Sequence[TrialRecord]) -> None:
        seen: set[int] = set()
        for record in history:
            number = self._number_by_name.get(record.name)
            if number is None:
                number = self._bind(record)
                if number is None:
                    continue
            seen.add(number)
            if record.state.finished and record.name not in self._finished:
                self._finish(number, record)
        # Asked but never handed out (the caller dropped them): close them so the constant
        # liar does not count them as running forever.
        for numbers in self._unbound.values():
            for number in numbers:
                if number not in seen:
                    self._study.tell(number, state=OptunaState.FAIL)
        self._unbound.clear()

    def _bind(self, record: TrialRecord) -> int | None:
        typed = self.typed(record)
        if typed is None:
            return None
        pending = self._unbound.get(self.space.key(typed))
        number = pending.pop(0) if pending else self._add(record, typed)
        if number is None:
            return None
        self._number_by_name[record.name] = number
        return number

    def _add(self, record: TrialRecord, typed: Mapping[str, Value]) -> int | None:
        """Add a record this engine never asked for (history after a restart)."""
        state = _TERMINAL.get(record.state, OptunaState.RUNNING)
        value = record.objective
        intermediate: dict[int, float] | None = None
        if state is OptunaState.COMPLETE and value is None:
            state = OptunaState.FAIL
        if state is OptunaState.PRUNED:
            values = list(record.intermediate) or ([value] if value is not None else [])
            intermediate = {i: float(v) for i, v in enumerate(values)} if values else None
        frozen = optuna.trial.create_trial(
            state=state,
            value=value if state is OptunaState.COMPLETE else None,
            params=dict(typed),
            distributions=self._distributions,
            intermediate_values=intermediate,
        )
        self._study.add_trial(frozen)
        if state is not OptunaState.RUNNING:
            self._finished.add(record.name)
        self._count += 1
        return self._count - 1  # in-memory trial numbers are consecutive from 0

    def _finish(self, number: int, record: TrialRecord) -> None:
        state = _TERMINAL[record.state]
        if state is OptunaState.COMPLETE and record.objective is not None:
            self._study.tell(number, record.objective)
        elif state is OptunaState.PRUNED:
            values = list(record.intermediate) or (
                [record.objective] if record.objective is not None else []
            )
            storage = self._study._storage  # the study's own in-memory storage
            trial_id = storage.get_trial_id_from_study_id_trial_number(
                self._study._study_id, number
            )
            for step, value in enumerate(values):
                storage.set_trial_intermediate_value(trial_id, step, float(value))
            self._study.tell(number, state=OptunaState.PRUNED)
        else:
            self._study.tell(number, state=OptunaState.FAIL)
        self._finished.add(record.name)


class _quiet(warnings.catch_warnings):
    """Silence Optuna's ExperimentalWarning (multivariate/grouped TPE, GP sampler): flowyard
    chooses those features deliberately and users cannot act on the warning."""

    def __enter__(self) -> None:
        super().__enter__()
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
