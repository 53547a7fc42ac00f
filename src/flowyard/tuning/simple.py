"""The model-free algorithms: ``random``, ``grid`` and ``sobol``.

All three are exact functions of the history, so a restarted control plane continues them
without repeats: random is seeded from the experiment uid and the number of records, grid walks
the grid in a fixed order skipping every point already handed out, and sobol continues the
scrambled Sobol sequence (the engine Optuna's ``QMCSampler`` uses, from SciPy) at the index equal
to the number of records.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np

from flowyard.tuning import sampling
from flowyard.tuning.engine import Suggestion, SuggestionEndReached, SuggestionEngine, TrialRecord


class RandomEngine(SuggestionEngine):
    """Independent draws from each parameter's prior (Katib ``random``)."""

    def suggest(self, count: int, history: Sequence[TrialRecord]) -> list[Suggestion]:
        rng = np.random.default_rng(self.context.seed(len(history)))
        return [
            self.make({p.name: sampling.sample(p, rng) for p in self.space.parameters})
            for _ in range(count)
        ]


class GridEngine(SuggestionEngine):
    """Every combination of the parameters' grids, in spec order (last parameter fastest),
    each exactly once; then :class:`SuggestionEndReached`."""

    def suggest(self, count: int, history: Sequence[TrialRecord]) -> list[Suggestion]:
        used = set()
        for record in history:
            typed = self.typed(record)
            if typed is not None:
                used.add(self.space.key(typed))
        grids = [p.grid() for p in self.space.parameters]
        out: list[Suggestion] = []
        for combo in itertools.product(*grids):
            if len(out) >= count:
                break
            values = dict(zip(self.space.names, combo, strict=True))
            key = self.space.key(values)
            if key not in used:
                used.add(key)
                out.append(self.make(values))
        if not out and count > 0:
            raise SuggestionEndReached(
                f"all {self.space.grid_size()} grid points have been suggested"
            )
        return out


class SobolEngine(SuggestionEngine):
    """A scrambled Sobol sequence over the unit cube, mapped onto each parameter."""

    def suggest(self, count: int, history: Sequence[TrialRecord]) -> list[Suggestion]:
        from scipy.stats import qmc  # slow import: only when sobol is used

        dims = len(self.space.parameters)
        engine = qmc.Sobol(dims, scramble=True, seed=self.context.seed("sobol"))
        with warnings.catch_warnings():
            # SciPy warns that balance needs power-of-two sample counts; trials come one
            # batch at a time, so the sequence is consumed in whatever sizes the budget allows.
            warnings.simplefilter("ignore", UserWarning)
            if history:
                engine.fast_forward(len(history))
            points = engine.random(count) if count > 0 else np.empty((0, dims))
        return [
            self.make(
                {
                    p.name: sampling.from_unit(p, float(row[i]))
                    for i, p in enumerate(self.space.parameters)
                }
            )
            for row in points
        ]
