"""The suggestion-engine interface: what the Suggestion controller calls.

An engine is a pure function of the experiment spec and the persisted trial history::

    engine = build_engine(experiment["spec"], uid=experiment["metadata"]["uid"],
                          name=experiment["metadata"]["name"])
    suggestions = engine.suggest(n, history)     # history: list[TrialRecord]

Contract (what makes a control-plane restart continue the same study):

* ``history`` holds one :class:`TrialRecord` for every assignment handed out so far (the
  Suggestion's ``status.suggestions``, joined with the state and observation of the Trial made
  from it; ``PENDING`` when the Trial does not exist yet), in the order they were handed out.
  Labels returned in :attr:`Suggestion.labels` must be kept on the record (Katib copies them onto
  the Trial's labels); hyperband and pbt use them to place records in their schedule.
* An engine may cache state between calls for speed, but a fresh engine given the same history
  continues the study: grid never repeats a point, hyperband and pbt resume their schedule, and
  the model-based samplers are refit on every finished trial. Random draws are seeded from the
  experiment uid and the number of records, so a repeated call after a crash (same history)
  returns the same suggestions instead of new ones.
* ``suggest`` may return fewer than ``n`` suggestions (hyperband and pbt wait for a rung or a
  generation to finish); it raises :class:`SuggestionEndReached` when the search space is
  exhausted and nothing more will ever be suggested.
"""

from __future__ import annotations

import enum
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowyard.tuning.space import SearchSpace, Value


class SuggestionEndReached(Exception):
    """The algorithm has nothing left to suggest (grid exhausted, hyperband schedule done).

    The Experiment controller ends the experiment with reason ``SuggestionEndReached``."""


class TrialState(enum.Enum):
    """A trial's state as the engines see it (Katib's Trial condition types)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    KILLED = "Killed"
    EARLY_STOPPED = "EarlyStopped"
    METRICS_UNAVAILABLE = "MetricsUnavailable"

    @property
    def active(self) -> bool:
        return self in (TrialState.PENDING, TrialState.RUNNING)

    @property
    def finished(self) -> bool:
        return not self.active


@dataclass
class TrialRecord:
    """One past assignment and what became of it.

    ``assignments`` may be typed values or Katib strings (``{"lr": "0.01"}``);
    ``objective`` is the objective metric extracted with its metric strategy (None when not
    observed); ``intermediate`` the objective values in reporting order (median stopping, pruned
    trials)."""

    name: str
    assignments: Mapping[str, object]
    state: TrialState = TrialState.PENDING
    objective: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    intermediate: Sequence[float] = ()


@dataclass
class Suggestion:
    """One new assignment: typed ``values``, Katib string form in :attr:`assignments`.

    ``labels`` go onto the Trial (Katib's ``TrialAssignment.labels``); ``name`` is set when the
    algorithm names the trial itself (pbt, whose checkpoint directory is named after it)."""

    values: dict[str, Value]
    assignments: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    name: str | None = None

    def parameter_assignments(self) -> list[dict[str, str]]:
        """Katib's ``[{name, value}]`` list for ``Trial.spec.parameterAssignments``."""
        return [{"name": k, "value": v} for k, v in self.assignments.items()]


@dataclass(frozen=True)
class EngineContext:
    """What every engine is built from."""

    algorithm: str
    space: SearchSpace
    spec: Mapping[str, Any]
    settings: Mapping[str, Any]
    uid: str
    name: str

    @property
    def maximize(self) -> bool:
        return (self.spec.get("objective") or {}).get("type") == "maximize"

    def seed(self, *parts: object) -> int:
        """A 32-bit seed from the experiment uid (or ``random_state``) and ``parts``."""
        base = self.settings.get("random_state", self.uid or self.name)
        text = ":".join(str(p) for p in (base, self.algorithm, *parts))
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


class SuggestionEngine(ABC):
    """Base class: subclasses implement :meth:`suggest`."""

    def __init__(self, context: EngineContext) -> None:
        self.context = context
        self.space = context.space

    @abstractmethod
    def suggest(self, count: int, history: Sequence[TrialRecord]) -> list[Suggestion]:
        """Up to ``count`` new assignments given everything handed out so far."""

    def prepare(self, suggestion: Suggestion) -> Path | None:
        """Set up what a trial needs before it starts (pbt: its checkpoint directory). Called
        by the controller once per suggestion; the default does nothing."""
        return None

    def make(
        self,
        values: Mapping[str, Value],
        labels: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> Suggestion:
        typed = {n: values[n] for n in self.space.names}
        return Suggestion(typed, self.space.format(typed), dict(labels or {}), name)

    def typed(self, record: TrialRecord, unbounded: Sequence[str] = ()) -> dict[str, Value] | None:
        """The record's typed assignment, or None if it no longer fits the search space."""
        try:
            return self.space.parse(record.assignments, unbounded)
        except (ValueError, TypeError, KeyError):
            return None

    def signed(self, value: float) -> float:
        """The objective as a value to minimise."""
        return -value if self.context.maximize else value
