"""Hyperband (Li et al.) with Katib's settings: ``resource_name`` (the parameter that carries the
budget, e.g. epochs), ``r_l`` (the largest budget, R) and ``eta`` (the halving rate, default 3).

The schedule is Katib's: ``s_max = floor(log(R)/log(eta))``; brackets ``s = s_max .. 0`` run one
after another; bracket ``s`` starts ``n = ceil((s_max+1) * eta^s / (s+1))`` random
configurations with budget ``r = R * eta^-s``, and rung ``i`` re-runs the best
``ceil(n_{i-1} / eta)`` of rung ``i-1`` with budget ``int(r * eta^i)``. A rung starts when the
previous rung has finished. As in Katib the budget value written into the resource parameter may
lie outside its feasibleSpace.

Every suggestion is labelled with its bracket and rung (and the trial it was promoted from), so
the schedule is rebuilt from the stored trials after a restart. Unlike Katib's service, the
master bracket has its canonical size ``n`` instead of the number of trials requested at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flowyard.tuning import sampling
from flowyard.tuning.engine import (
    EngineContext,
    Suggestion,
    SuggestionEndReached,
    SuggestionEngine,
    TrialRecord,
    TrialState,
)
from flowyard.tuning.settings import hyperband_shape

LABEL_BRACKET = "hyperband.flowyard.io/bracket"
LABEL_RUNG = "hyperband.flowyard.io/rung"
LABEL_PARENT = "hyperband.flowyard.io/parent"


@dataclass(frozen=True)
class Rung:
    bracket: int
    index: int
    size: int
    budget: int


def schedule(r_l: float, eta: int, s_max: int) -> list[Rung]:
    """Every rung of every bracket, in the order they run (nominal sizes)."""
    rungs: list[Rung] = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) * eta**s / (s + 1))
        r = r_l * eta ** (-s)
        size = n
        for i in range(s + 1):
            if i > 0:
                size = math.ceil(math.ceil(n * eta ** (-(i - 1))) / eta)
            rungs.append(Rung(s, i, size, int(r * eta**i)))
    return rungs


class HyperbandEngine(SuggestionEngine):
    def __init__(self, context: EngineContext) -> None:
        super().__init__(context)
        self.resource = str(context.settings["resource_name"])
        eta, s_max = hyperband_shape(context.settings)
        self.rungs = schedule(float(context.settings["r_l"]), eta, s_max)
        self.eta = eta

    def suggest(self, count: int, history: Sequence[TrialRecord]) -> list[Suggestion]:
        by_rung: dict[tuple[int, int], list[TrialRecord]] = {}
        for record in history:
            try:
                key = (int(record.labels[LABEL_BRACKET]), int(record.labels[LABEL_RUNG]))
            except (KeyError, ValueError):
                continue  # not one of ours
            by_rung.setdefault(key, []).append(record)
        out: list[Suggestion] = []
        previous: list[TrialRecord] = []
        for rung in self.rungs:
            given = by_rung.get((rung.bracket, rung.index), [])
            if rung.index == 0:
                target = rung.size
                new = self._fresh(rung, len(given), count - len(out))
            else:
                if any(r.state.active for r in previous):
                    return out  # a rung is promoted only once the previous one has finished
                target = min(rung.size, len(self._ranked(previous)))
                new = self._promote(rung, previous, given, count - len(out))
            out += new
            previous = given + [_as_record(s) for s in new]
            if len(out) >= count or len(previous) < target:
                return out
        if not out and count > 0:
            raise SuggestionEndReached("the hyperband schedule is complete")
        return out

    def _ranked(self, records: list[TrialRecord]) -> list[TrialRecord]:
        """Succeeded records, best first."""
        done = [r for r in records if r.state is TrialState.SUCCEEDED and r.objective is not None]
        return sorted(done, key=lambda r: self.signed(float(r.objective or 0.0)))

    def _fresh(self, rung: Rung, given: int, room: int) -> list[Suggestion]:
        out = []
        for slot in range(given, min(rung.size, given + max(room, 0))):
            rng = np.random.default_rng(self.context.seed(rung.bracket, slot))
            values = {p.name: sampling.sample(p, rng) for p in self.space.parameters}
            values[self.resource] = self._budget(rung.budget)
            out.append(self.make(values, self._labels(rung)))
        return out

    def _promote(
        self, rung: Rung, previous: list[TrialRecord], given: list[TrialRecord], room: int
    ) -> list[Suggestion]:
        done = self._ranked(previous)
        promoted = {r.labels.get(LABEL_PARENT) for r in given}
        out: list[Suggestion] = []
        for parent in done[: rung.size]:
            if len(out) >= room:
                break
            typed = self.typed(parent, [self.resource])
            if parent.name in promoted or typed is None:
                continue
            typed[self.resource] = self._budget(rung.budget)
            out.append(self.make(typed, {**self._labels(rung), LABEL_PARENT: parent.name}))
        return out

    def _budget(self, value: int) -> int | float:
        param = self.space.by_name[self.resource]
        return int(value) if param.type == "int" else float(value)

    @staticmethod
    def _labels(rung: Rung) -> dict[str, str]:
        return {LABEL_BRACKET: str(rung.bracket), LABEL_RUNG: str(rung.index)}


def _as_record(suggestion: Suggestion) -> TrialRecord:
    return TrialRecord("", suggestion.assignments, TrialState.PENDING, labels=suggestion.labels)
