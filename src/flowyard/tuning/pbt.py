"""Population-based training (Katib ``pbt``): ``n_population``, ``truncation_threshold``,
``resample_probability`` and ``suggestion_trial_dir`` with Katib's meanings.

Generation 0 is ``n_population`` random members. When a generation has ``n_population``
succeeded members the next one is bred from them: the bottom ``truncation_threshold`` fraction
*exploits* (takes the hyperparameters and the checkpoint of a random member of the top fraction),
the rest *explore* (keep their own checkpoint and perturb their hyperparameters by x0.8 or x1.2,
or step to a neighbouring choice; with ``resample_probability`` set, each value is instead redrawn
from its prior with that probability). A failed member is re-queued with the same assignment and
parent, as Katib does.

Each trial gets a checkpoint directory ``<suggestion_trial_dir>/<trial name>``;
:meth:`PbtEngine.prepare` seeds it with a copy of the parent's directory before the trial
starts. Trials find it through a trial parameter whose reference is ``${trialSpec.Name}``, as in
Katib's PBT example. Unlike Katib (which points an exploiting member at its own old checkpoint),
the exploiting member starts from the better member's checkpoint, which is what PBT prescribes.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from flowyard import config
from flowyard.tuning import sampling
from flowyard.tuning.engine import (
    EngineContext,
    Suggestion,
    SuggestionEngine,
    TrialRecord,
    TrialState,
)
from flowyard.tuning.space import Parameter, Value

LABEL_GENERATION = "pbt.suggestion.katib.kubeflow.org/generation"
LABEL_PARENT = "pbt.suggestion.katib.kubeflow.org/parent"
_MAX_GENERATIONS = 100_000


class PbtEngine(SuggestionEngine):
    def __init__(self, context: EngineContext) -> None:
        super().__init__(context)
        settings = context.settings
        self.population = int(settings["n_population"])
        self.truncation = float(settings["truncation_threshold"])
        self.resample = settings.get("resample_probability")
        directory = Path(str(settings["suggestion_trial_dir"]))
        self.directory = (
            directory
            if directory.is_absolute()
            else (config.artifacts_dir() / "pbt" / (context.uid or context.name) / directory)
        )

    def checkpoint_dir(self, trial_name: str) -> Path:
        return self.directory / trial_name

    def prepare(self, suggestion: Suggestion) -> Path:
        """Create the trial's checkpoint directory (a copy of its parent's, if any)."""
        assert suggestion.name is not None
        target = self.checkpoint_dir(suggestion.name)
        if target.exists():
            shutil.rmtree(target)
        parent = suggestion.labels.get(LABEL_PARENT)
        source = self.checkpoint_dir(parent) if parent else None
        if source is not None and source.is_dir():
            shutil.copytree(source, target)
        else:
            target.mkdir(parents=True, exist_ok=True)
        return target

    def suggest(self, count: int, history: Sequence[TrialRecord]) -> list[Suggestion]:
        generations: dict[int, list[TrialRecord]] = {}
        for record in history:
            try:
                generations.setdefault(int(record.labels[LABEL_GENERATION]), []).append(record)
            except (KeyError, ValueError):
                continue
        out: list[Suggestion] = []
        for generation in range(_MAX_GENERATIONS):
            members = generations.get(generation, [])
            succeeded = [m for m in members if m.state is TrialState.SUCCEEDED]
            if len(succeeded) >= self.population:
                continue
            live = len(succeeded) + sum(m.state.active for m in members)
            failed = [
                m for m in members if m.state.finished and m.state is not TrialState.SUCCEEDED
            ]
            for slot in range(len(members), len(members) + self.population - live):
                if len(out) >= count:
                    break
                retry = slot - self.population
                if retry >= 0:
                    out.append(self._retry(generation, slot, failed[retry]))
                elif generation == 0:
                    out.append(self._fresh(slot))
                else:
                    parents = generations[generation - 1]
                    out.append(self._breed(generation, slot, parents))
            return out
        return out

    def _name(self, generation: int, slot: int) -> str:
        return f"{self.context.name}-g{generation}-{slot}"

    def _fresh(self, slot: int) -> Suggestion:
        rng = np.random.default_rng(self.context.seed(0, slot))
        values = {p.name: sampling.sample(p, rng) for p in self.space.parameters}
        return self.make(values, {LABEL_GENERATION: "0"}, self._name(0, slot))

    def _retry(self, generation: int, slot: int, failed: TrialRecord) -> Suggestion:
        values = self.typed(failed) or {}
        labels = {LABEL_GENERATION: str(generation)}
        if failed.labels.get(LABEL_PARENT):
            labels[LABEL_PARENT] = failed.labels[LABEL_PARENT]
        if not values:
            return self._fresh(slot)
        return self.make(values, labels, self._name(generation, slot))

    def _breed(self, generation: int, slot: int, parents: list[TrialRecord]) -> Suggestion:
        ranked = sorted(
            (p for p in parents if p.state is TrialState.SUCCEEDED and p.objective is not None),
            key=lambda p: self.signed(float(p.objective or 0.0)),
        )[: self.population]
        rng = np.random.default_rng(self.context.seed(generation, slot))
        cut = max(1, int(len(ranked) * self.truncation))
        member = ranked[slot % len(ranked)]
        if slot % len(ranked) >= len(ranked) - int(len(ranked) * self.truncation):
            parent = ranked[int(rng.integers(min(cut, len(ranked))))]  # exploit a top member
            values = self.typed(parent) or {}
        else:
            parent = member
            values = {
                k: self._explore(self.space.by_name[k], v, rng)
                for k, v in (self.typed(member) or {}).items()
            }
        labels = {LABEL_GENERATION: str(generation), LABEL_PARENT: parent.name}
        return self.make(values, labels, self._name(generation, slot))

    def _explore(self, param: Parameter, value: Value, rng: np.random.Generator) -> Value:
        if self.resample is not None:
            return sampling.sample(param, rng) if rng.random() < float(self.resample) else value
        if param.is_numeric_range:
            return param.snap(float(value) * float(rng.choice([0.8, 1.2])))
        index = param.choices.index(value) + int(rng.choice([-1, 1]))
        return param.choices[index % len(param.choices)]
