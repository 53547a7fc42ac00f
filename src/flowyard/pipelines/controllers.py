"""The pipeline controllers and kinds, as the platform loads them."""

from __future__ import annotations

from flowyard.controllers.base import Controller
from flowyard.pipelines.argo.controller import WorkflowController
from flowyard.pipelines.kinds import register_kinds
from flowyard.pipelines.run_controller import RunController

CONTROLLERS: list[type[Controller]] = [RunController, WorkflowController]

__all__ = ["CONTROLLERS", "register_kinds"]
