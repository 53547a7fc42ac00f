"""Event records: what ``describe`` shows under "Events".

Controllers call :meth:`EventRecorder.record` for things a user should see (a process started,
a retry, a failure). Repeats of the same reason and message for the same object bump ``count``
and ``lastTimestamp`` on one Event instead of piling up new ones, as Kubernetes does.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Literal

from flowyard.errors import ConflictError, FlowyardError, NotFoundError
from flowyard.resources.kinds import EVENT
from flowyard.resources.meta import Resource, now_iso, random_suffix

if TYPE_CHECKING:
    from flowyard.store.base import BaseStore

log = logging.getLogger(__name__)
EventType = Literal["Normal", "Warning"]
_COMPONENT = "flowyard-controller-manager"


class EventRecorder:
    """Writes ``v1 Event`` objects for controllers. Never raises: an event that cannot be
    written is logged, because losing an event must not fail a reconcile."""

    def __init__(self, store: BaseStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._recent: dict[tuple[str, str, str], str] = {}

    def record(self, obj: Resource, type_: EventType, reason: str, message: str) -> None:
        md = obj.get("metadata") or {}
        uid = str(md.get("uid") or "")
        namespace = str(md.get("namespace") or "default")
        dedupe_key = (uid, reason, message)
        try:
            with self._lock:
                existing = self._recent.get(dedupe_key)
            if existing and self._bump(namespace, existing):
                return
            created = self._store.create(self._new_event(obj, namespace, type_, reason, message))
            with self._lock:
                if len(self._recent) > 10_000:
                    self._recent.clear()
                self._recent[dedupe_key] = created["metadata"]["name"]
        except FlowyardError as exc:
            log.warning("could not record event %s for %s: %s", reason, md.get("name"), exc)

    def _bump(self, namespace: str, name: str) -> bool:
        try:
            event = self._store.get(EVENT, namespace, name)
        except NotFoundError:
            return False
        event["count"] = int(event.get("count") or 1) + 1
        event["lastTimestamp"] = now_iso()
        try:
            self._store.update(event)
        except ConflictError:
            return False
        return True

    @staticmethod
    def _new_event(
        obj: Resource, namespace: str, type_: EventType, reason: str, message: str
    ) -> Resource:
        md = obj.get("metadata") or {}
        now = now_iso()
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{md.get('name')}.{random_suffix(10)}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", ""),
                "kind": obj.get("kind", ""),
                "name": md.get("name", ""),
                "namespace": md.get("namespace", ""),
                "uid": md.get("uid", ""),
                "resourceVersion": md.get("resourceVersion", ""),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": _COMPONENT},
            "reportingComponent": _COMPONENT,
        }
