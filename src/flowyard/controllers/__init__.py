"""Controllers and the manager that drives them (DESIGN §3, principle 2)."""

from flowyard.controllers.base import (
    Controller,
    ControllerContext,
    ObjectKey,
    Result,
    process_labels,
)

__all__ = ["Controller", "ControllerContext", "ObjectKey", "Result", "process_labels"]
