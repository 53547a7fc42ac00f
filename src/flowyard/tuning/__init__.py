"""Hyperparameter tuning: Katib's Experiment, Trial and Suggestion kinds and the engine under
them (search spaces, suggestion algorithms on Optuna, metrics collection, early stopping, trial
template rendering).

Importing this package is cheap: it exposes only :func:`report_metrics` (for trial code).
Everything else is imported from its module, e.g. ``flowyard.tuning.algorithms.build_engine``
and ``flowyard.tuning.kinds.register_kinds``.
"""

from flowyard.tuning.push import report_metrics

__all__ = ["report_metrics"]
