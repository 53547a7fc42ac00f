"""Executors: how flowyard runs processes (DESIGN §6).

The names below load lazily, so that the fork server (``python -m
flowyard.executors.forkserver``), which runs inside this package, imports nothing but itself.
"""

from importlib import import_module

_LAZY = {
    "BaseExecutor": "flowyard.executors.base",
    "Preload": "flowyard.executors.base",
    "ProcessSpec": "flowyard.executors.base",
    "ProcessState": "flowyard.executors.base",
    "ProcessStatus": "flowyard.executors.base",
    "Resources": "flowyard.executors.base",
    "LocalExecutor": "flowyard.executors.local",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'flowyard.executors' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
