"""Distributed training: the Training Operator v1 kinds (PyTorchJob, TFJob, XGBoostJob, MPIJob)
and Trainer v2 (TrainJob, TrainingRuntime, ClusterTrainingRuntime), run as gangs of local
processes through the executor.

``register_kinds()`` adds the kinds and their admission hooks to the registry (call it once at
startup; importing :mod:`flowyard.resources` does not). Job controllers call
:class:`~flowyard.training.runner.GangRunner` (v1) or
:class:`~flowyard.training.trainjob_runner.TrainJobRunner` (v2) from ``reconcile``.
"""

from __future__ import annotations

from flowyard.training.kinds import register_kinds

__all__ = ["register_kinds"]
