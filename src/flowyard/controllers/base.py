"""The controller interface: one controller per kind, level-triggered reconciliation.

A controller is handed the key of an object that may need work and makes the world match the
object's spec: it reads the object from the store, starts or stops processes through the executor,
creates child resources, and writes status. It must be idempotent (it is called again after every
change and after every restart) and must not assume any in-memory state survives.

The manager (:mod:`flowyard.controllers.manager`) calls ``reconcile`` when:

* an object of ``kind`` is added, modified or deleted (including on start: full resync);
* an object of a kind in ``owns`` changes whose controlling ownerReference points at one;
* a process whose labels name an object of ``kind`` (see :func:`process_labels`) changes state;
* the previous reconcile asked to be requeued (``Result.requeue_after``), or raised (exponential
  backoff per key).
"""

from __future__ import annotations

import contextlib
import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from flowyard.errors import ConflictError, NotFoundError
from flowyard.resources.meta import Resource
from flowyard.resources.registry import KindInfo

if TYPE_CHECKING:
    from flowyard.controllers.events import EventRecorder
    from flowyard.executors.base import BaseExecutor
    from flowyard.store.base import BaseStore

LABEL_KIND = "flowyard.io/kind"
LABEL_NAMESPACE = "flowyard.io/namespace"
LABEL_NAME = "flowyard.io/name"
LABEL_UID = "flowyard.io/uid"


@dataclass(frozen=True, order=True)
class ObjectKey:
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Resource) -> ObjectKey:
        md = obj.get("metadata") or {}
        return cls(str(md.get("namespace") or ""), str(md.get("name") or ""))

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class Result:
    """What a reconcile wants next: ``requeue_after`` seconds (None: only on the next change)."""

    requeue_after: float | None = None


@dataclass
class ControllerContext:
    """What every controller gets: the shared store, the executor and the event recorder."""

    store: BaseStore
    executor: BaseExecutor
    events: EventRecorder


def process_labels(info: KindInfo, obj: Resource) -> dict[str, str]:
    """Labels to put on a ProcessSpec so the manager routes its state changes back to ``obj``."""
    md = obj["metadata"]
    return {
        LABEL_KIND: info.key,
        LABEL_NAMESPACE: str(md.get("namespace") or ""),
        LABEL_NAME: str(md["name"]),
        LABEL_UID: str(md.get("uid") or ""),
    }


class Controller(ABC):
    """Base class; subclasses set ``kind`` (and ``owns``) and implement ``reconcile``."""

    kind: ClassVar[KindInfo]
    owns: ClassVar[tuple[KindInfo, ...]] = ()
    workers: ClassVar[int] = 2

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.executor = ctx.executor
        self.events = ctx.events

    @abstractmethod
    def reconcile(self, key: ObjectKey) -> Result | None:
        """Bring the object named by ``key`` towards its spec. Raise to retry with backoff."""

    def stop_processes(self, labels: dict[str, str], *, grace_seconds: float = 1.0) -> bool:
        """Kill every process whose labels include ``labels`` and forget those that have ended.
        Returns True once none is left; until then, reconcile again (kills are asynchronous)."""
        left = False
        for proc in self.executor.list(labels):
            if proc.state.finished:
                with contextlib.suppress(NotFoundError, ConflictError):
                    self.executor.forget(proc.name)
            else:
                self.executor.kill(proc.name, grace_seconds=grace_seconds)
                left = True
        return not left

    def add_finalizer(self, obj: Resource, finalizer: str) -> Resource:
        """``obj`` with ``finalizer`` in its metadata, written to the store if it was missing."""
        if finalizer in (obj["metadata"].get("finalizers") or []):
            return obj
        new = copy.deepcopy(obj)
        new["metadata"].setdefault("finalizers", []).append(finalizer)
        return self.store.update(new)

    def remove_finalizer(self, obj: Resource, finalizer: str) -> None:
        """Drop ``finalizer`` (the store deletes an object being deleted once none is left)."""
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [
            f for f in new["metadata"].get("finalizers") or [] if f != finalizer
        ]
        with contextlib.suppress(NotFoundError):
            self.store.update(new)
