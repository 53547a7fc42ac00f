"""The Katib controllers: Experiment, Suggestion and Trial.

``controllers()`` registers the kinds (with their admission hooks) and returns the controller
classes for the manager. Cooperation is only through resources, as in Katib:

* the Experiment controller creates one Suggestion (same name), raises its ``spec.requests``
  to ask for assignments, creates a Trial (owned by the Experiment) for every assignment in
  ``Suggestion.status.suggestions`` that has none yet, keeps the counters, conditions and
  ``currentOptimalTrial``, and ends the experiment;
* the Suggestion controller runs the suggestion engine and appends its assignments to
  ``status.suggestions`` — the persisted study, so a restarted control plane never repeats or
  loses an assignment (trial names are fixed when the assignment is stored);
* the Trial controller creates the run object (owned by the Trial), watches its success and
  failure conditions, collects metrics, applies median stopping and writes the observation.
"""

from __future__ import annotations

from flowyard.controllers.base import Controller
from flowyard.resources.registry import REGISTRY


def controllers() -> list[type[Controller]]:
    """Register the Katib kinds and return their controllers. The Trial controller owns every
    kind registered at this point (a trial's run object may be of any kind)."""
    from flowyard.tuning.controllers.experiment import ExperimentController
    from flowyard.tuning.controllers.suggestion import SuggestionController
    from flowyard.tuning.controllers.trial import TrialController
    from flowyard.tuning.kinds import GROUP

    TrialController.owns = tuple(
        info
        for info in REGISTRY
        if not (info.group == GROUP and info.kind in ("Experiment", "Trial", "Suggestion"))
        and info.kind != "Event"
    )
    return [ExperimentController, SuggestionController, TrialController]
