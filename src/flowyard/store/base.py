"""The store interface: one place for every resource, Kubernetes API semantics.

Contract (every backend passes ``tests/store/test_contract.py``):

* ``resourceVersion`` is one global, strictly increasing counter (like etcd's revision), written
  as a decimal string. Every create, update, status update and delete takes the next value,
  except an update or status update that changes nothing: it writes nothing, emits no event and
  returns the stored object (as Kubernetes does, so controllers cannot wake themselves up).
* ``create`` assigns ``uid``, ``resourceVersion``, ``generation`` 1 and ``creationTimestamp``,
  resolves ``generateName``, defaults the namespace to ``default`` for namespaced kinds, and
  raises AlreadyExistsError for a taken name.
* ``update`` writes metadata and spec (never status). If the object carries a
  ``resourceVersion`` it must equal the stored one or ConflictError is raised; an empty one means
  "unconditional". ``generation`` grows only when ``spec`` changes. Clearing the last finalizer of
  an object that is being deleted removes it.
* ``update_status`` writes status only, with the same concurrency rule; ``generation`` is kept.
* ``delete`` of an object with finalizers sets ``deletionTimestamp`` and returns it; otherwise
  it removes it and, for ``propagation`` ``Background``/``Foreground``, deletes every object whose
  ``ownerReferences`` name its uid (recursively). ``Orphan`` removes the owner references instead.
* ``events_since(rv)`` returns, in order, the ADDED/MODIFIED/DELETED events after ``rv``; it
  raises GoneError when ``rv`` is older than the kept event log.
* ``wait_for_change(after, timeout)`` blocks until an event newer than ``after`` exists.
* Lists are ordered by namespace then name; ``limit``/``continue`` pages are stable under inserts.
"""

from __future__ import annotations

import builtins
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from flowyard.resources.meta import Resource
from flowyard.resources.registry import KindInfo

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Propagation = Literal["Background", "Foreground", "Orphan"]


@dataclass(frozen=True)
class ListResult:
    """One page of a list: the items, the store's resourceVersion when it was read, and the
    ``continue`` token for the next page (None on the last page)."""

    items: list[Resource]
    resource_version: str
    continue_token: str | None = None
    remaining: int | None = None


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    object: Resource
    resource_version: int
    kind_key: str


class BaseStore(ABC):
    """Abstract store; see the module docstring for the contract."""

    @abstractmethod
    def get(self, info: KindInfo, namespace: str | None, name: str) -> Resource:
        """The stored object, or NotFoundError."""

    @abstractmethod
    def list(
        self,
        info: KindInfo,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        """Objects of one kind, in one namespace or all (``namespace=None``)."""

    @abstractmethod
    def create(self, obj: Resource) -> Resource:
        """Store a new object; returns it with system metadata filled in."""

    @abstractmethod
    def update(self, obj: Resource) -> Resource:
        """Replace metadata and spec of an existing object."""

    @abstractmethod
    def update_status(self, obj: Resource) -> Resource:
        """Replace the status of an existing object."""

    @abstractmethod
    def delete(
        self,
        info: KindInfo,
        namespace: str | None,
        name: str,
        *,
        propagation: Propagation = "Background",
        uid: str | None = None,
    ) -> Resource:
        """Delete (or mark for deletion) an object; ``uid`` is an optional precondition."""

    @abstractmethod
    def events_since(
        self, resource_version: int, *, limit: int = 1000
    ) -> builtins.list[WatchEvent]:
        """Events after ``resource_version`` (all kinds), oldest first."""

    @abstractmethod
    def wait_for_change(self, after: int, timeout: float) -> int:
        """Block until the latest resourceVersion exceeds ``after`` or ``timeout`` passes;
        return the latest resourceVersion."""

    @abstractmethod
    def latest_resource_version(self) -> int:
        """The resourceVersion of the newest event."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def watch(
        self,
        info: KindInfo | None,
        namespace: str | None = None,
        *,
        resource_version: int | None = None,
        stop: threading.Event | None = None,
        poll_seconds: float = 1.0,
    ) -> Iterator[WatchEvent]:
        """Follow changes of one kind (or all kinds with ``info=None``) after
        ``resource_version`` (default: from now) until ``stop`` is set."""
        last = self.latest_resource_version() if resource_version is None else resource_version
        while stop is None or not stop.is_set():
            for event in self.events_since(last):
                last = event.resource_version
                if info is not None and event.kind_key != info.key:
                    continue
                if namespace and event.object.get("metadata", {}).get("namespace") != namespace:
                    continue
                yield event
            self.wait_for_change(last, poll_seconds)
