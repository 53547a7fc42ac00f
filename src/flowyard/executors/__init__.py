"""Executors: how flowyard runs processes (DESIGN §6)."""

from flowyard.executors.base import (
    BaseExecutor,
    ProcessSpec,
    ProcessState,
    ProcessStatus,
    Resources,
)
from flowyard.executors.local import LocalExecutor

__all__ = [
    "BaseExecutor",
    "LocalExecutor",
    "ProcessSpec",
    "ProcessState",
    "ProcessStatus",
    "Resources",
]
