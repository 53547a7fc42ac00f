"""The executor interface: the one seam through which flowyard starts processes (DESIGN §6).

Contract (every executor passes ``tests/executors/test_contract.py``):

* ``launch(spec)`` starts a process or queues it until its ``resources`` fit in the free slots;
  it returns at once. A spec that can never fit raises InsufficientResourcesError. Launching a
  name that is already known returns that process's status (launch is idempotent, so a
  controller that crashed between launch and recording it can safely launch again).
* ``launch_gang(specs)`` starts all of them together or none: they wait as one unit until every
  member fits.
* Each process runs in its own process group with a scrubbed environment (``PATH``, ``HOME``,
  locale and ``TMPDIR`` from the executor, then ``spec.env``), stdout and stderr appended to
  ``spec.log_path``.
* States: PENDING -> RUNNING -> SUCCEEDED (exit 0) | FAILED (non-zero exit, or deadline) |
  KILLED (``kill``) | LOST (vanished while the control plane was down). ``exit_code`` is the
  process's code, or ``128 + signal`` when a signal ended it.
* ``deadline_seconds`` kills the whole group when it passes (state FAILED, reason
  DeadlineExceeded).
* ``kill(name)`` sends SIGTERM to the group, then SIGKILL after ``grace_seconds``; it is
  idempotent and also drops a queued process.
* Subscribers are called (from executor threads) on every state change, until they
  unsubscribe.
* ``recover()`` after a control-plane restart adopts the processes the previous instance started
  that are still alive (matched by pid and process start time) and reports the ones that ended
  meanwhile with their real exit codes, or LOST when the code cannot be known.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from flowyard.errors import NotFoundError
from flowyard.resources.quantity import Resources


@dataclass(frozen=True)
class Preload:
    """Modules a Python process may find already imported when it starts.

    A spec carrying one says: this process is ``PYTHON -m MODULE ...`` or ``PYTHON -c CODE ...``
    and does not mind running as a fork of a ``PYTHON`` that has imported ``modules`` with the
    environment variables ``env`` set (modules that read variables when imported must name
    them here, and the spec's ``env`` must give them the same values). An executor may use
    that to skip the interpreter's start-up and those imports; it may also ignore it.
    """

    modules: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


@dataclass
class ProcessSpec:
    """One process to run. ``name`` is unique in the executor (controllers derive it from the
    owning object so it is stable across restarts)."""

    name: str
    argv: list[str]
    log_path: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    resources: Resources = field(default_factory=Resources)
    labels: dict[str, str] = field(default_factory=dict)
    deadline_seconds: float | None = None
    preload: Preload | None = None


class ProcessState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    KILLED = "Killed"
    LOST = "Lost"

    @property
    def finished(self) -> bool:
        return self in (
            ProcessState.SUCCEEDED,
            ProcessState.FAILED,
            ProcessState.KILLED,
            ProcessState.LOST,
        )


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    state: ProcessState
    labels: dict[str, str]
    exit_code: int | None = None
    pid: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    reason: str = ""
    message: str = ""
    log_path: str = ""


StatusCallback = Callable[[ProcessStatus], None]


class BaseExecutor(ABC):
    """Abstract executor; see the module docstring for the contract."""

    @abstractmethod
    def capacity(self) -> Resources:
        """Total slots this executor schedules into."""

    @abstractmethod
    def launch(self, spec: ProcessSpec) -> ProcessStatus: ...

    @abstractmethod
    def launch_gang(self, specs: list[ProcessSpec]) -> list[ProcessStatus]: ...

    @abstractmethod
    def status(self, name: str) -> ProcessStatus:
        """Current status; NotFoundError for an unknown name."""

    def knows(self, name: str) -> bool:
        """Whether ``name`` is a process this executor knows (queued, running or finished)."""
        try:
            self.status(name)
        except NotFoundError:
            return False
        return True

    @abstractmethod
    def list(self, labels: dict[str, str] | None = None) -> builtins.list[ProcessStatus]:
        """Known processes whose labels include ``labels``."""

    @abstractmethod
    def kill(self, name: str, grace_seconds: float = 5.0) -> None: ...

    @abstractmethod
    def forget(self, name: str) -> None:
        """Drop a finished process's record (its log file stays)."""

    @abstractmethod
    def wait(self, name: str, timeout: float | None = None) -> ProcessStatus:
        """Block until the process finishes or ``timeout`` passes; return its status."""

    @abstractmethod
    def subscribe(self, callback: StatusCallback) -> None: ...

    @abstractmethod
    def unsubscribe(self, callback: StatusCallback) -> None:
        """Stop calling ``callback`` (a no-op if it was not subscribed)."""

    @abstractmethod
    def recover(self) -> builtins.list[ProcessStatus]:
        """Adopt what a previous instance started (see module docstring)."""

    @abstractmethod
    def shutdown(self, *, kill: bool = False) -> None:
        """Stop watching. Processes keep running (to be adopted) unless ``kill``."""


__all__ = [
    "BaseExecutor",
    "Preload",
    "ProcessSpec",
    "ProcessState",
    "ProcessStatus",
    "Resources",
    "StatusCallback",
]
