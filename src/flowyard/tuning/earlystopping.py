"""Early stopping: Katib's ``medianstop`` with its settings ``min_trials_required`` (default 3)
and ``start_step`` (default 4), computing a real median.

The rule (Golovin et al., "Google Vizier", 2017): a running trial that has reported ``s >=
start_step`` objective values is stopped when its best value so far is worse than the *median*,
over the completed (succeeded) trials, of each one's running average of its first ``s`` values —
once at least ``min_trials_required`` trials have completed.

Katib's service differs in two ways, documented in docs/tuning.md: it takes the *mean* of those
running averages (despite the name), and it averages only the first ``start_step`` values of
each completed trial, whatever step the running trial has reached.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowyard.tuning.settings import EARLY_STOPPING_SETTINGS, parse_settings


@dataclass(frozen=True)
class MedianStop:
    min_trials_required: int = 3
    start_step: int = 4
    maximize: bool = False

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> MedianStop | None:
        """The rule configured in ``spec.earlyStopping`` (None without early stopping)."""
        early = spec.get("earlyStopping")
        if not early or early.get("algorithmName") != "medianstop":
            return None
        settings = parse_settings(
            EARLY_STOPPING_SETTINGS["medianstop"], early.get("algorithmSettings")
        )
        maximize = (spec.get("objective") or {}).get("type") == "maximize"
        return cls(
            int(settings.get("min_trials_required", 3)),
            int(settings.get("start_step", 4)),
            maximize,
        )

    def median(self, completed: Sequence[Sequence[float]], step: int) -> float | None:
        """Median over completed trials of the mean of their first ``step`` values (None until
        ``min_trials_required`` completed trials have reported anything)."""
        averages = [statistics.fmean(values[:step]) for values in completed if values]
        if len(averages) < self.min_trials_required:
            return None
        return statistics.median(averages)

    def should_stop(self, values: Sequence[float], completed: Sequence[Sequence[float]]) -> bool:
        """Whether a running trial with objective history ``values`` should stop now."""
        step = len(values)
        if step < self.start_step:
            return False
        median = self.median(completed, step)
        if median is None:
            return False
        if self.maximize:
            return max(values) < median
        return min(values) > median

    def rule(
        self, objective_metric: str, completed: Sequence[Sequence[float]]
    ) -> dict[str, Any] | None:
        """Katib's ``EarlyStoppingRule`` for ``Trial.spec.earlyStoppingRules`` (the median at
        ``start_step``; informational — decisions use :meth:`should_stop`)."""
        median = self.median(completed, self.start_step)
        if median is None:
            return None
        return {
            "name": objective_metric,
            "value": repr(float(median)),
            "comparison": "less" if self.maximize else "greater",
            "startStep": self.start_step,
        }
