"""Executors: how flowyard runs processes (DESIGN §6)."""

from flowyard.executors.base import (
    BaseExecutor,
    ProcessSpec,
    ProcessState,
    ProcessStatus,
    Resources,
)

__all__ = ["BaseExecutor", "ProcessSpec", "ProcessState", "ProcessStatus", "Resources"]
