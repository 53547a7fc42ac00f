"""The controller manager: watches the store and the executor and drives every controller.

One thread follows the store's event log and routes each event to the controller of that kind
and, through ``ownerReferences``, to the controller of the owning kind. Executor state changes
are routed by the labels of :func:`~flowyard.controllers.base.process_labels`. Each controller
has its own :class:`~flowyard.controllers.queue.WorkQueue` and worker threads.

Start order matters for restart safety: the executor first re-adopts what the previous
instance left running, then every object of every controlled kind is queued (full resync), and
the event follower starts from the resourceVersion read *before* that resync, so no change made
meanwhile is missed.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

from flowyard.controllers.base import (
    LABEL_KIND,
    LABEL_NAME,
    LABEL_NAMESPACE,
    Controller,
    ControllerContext,
    ObjectKey,
)
from flowyard.controllers.events import EventRecorder
from flowyard.controllers.queue import WorkQueue
from flowyard.errors import ConflictError, GoneError
from flowyard.executors.base import BaseExecutor, ProcessStatus
from flowyard.store.base import BaseStore, WatchEvent

log = logging.getLogger(__name__)


class ControllerManager:
    def __init__(
        self,
        store: BaseStore,
        executor: BaseExecutor,
        controllers: list[type[Controller]],
    ) -> None:
        self.store = store
        self.executor = executor
        self.context = ControllerContext(store, executor, EventRecorder(store))
        self.controllers = [cls(self.context) for cls in controllers]
        self._queues = {id(c): WorkQueue[ObjectKey]() for c in self.controllers}
        self._by_kind: dict[str, list[Controller]] = defaultdict(list)
        self._by_owned: dict[str, list[Controller]] = defaultdict(list)
        for ctrl in self.controllers:
            self._by_kind[ctrl.kind.key].append(ctrl)
            for owned in ctrl.owns:
                self._by_owned[owned.key].append(ctrl)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.executor.subscribe(self._on_process)
        start_rv = self.store.latest_resource_version()
        for status in self.executor.recover():
            self._on_process(status)
        for ctrl in self.controllers:
            self._resync(ctrl)
            for index in range(ctrl.workers):
                self._spawn(f"{type(ctrl).__name__}-{index}", self._work, ctrl)
        self._spawn("event-follower", self._follow, start_rv)
        self.started.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for queue in self._queues.values():
            queue.close()
        for thread in self._threads:
            thread.join(timeout)

    def _spawn(self, name: str, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _resync(self, ctrl: Controller) -> None:
        token: str | None = None
        while True:
            page = self.store.list(ctrl.kind, None, limit=500, continue_token=token)
            for obj in page.items:
                self._queues[id(ctrl)].add(ObjectKey.of(obj))
            token = page.continue_token
            if not token:
                return

    # -- routing ---------------------------------------------------------------------------
    def enqueue(self, kind_key: str, key: ObjectKey, delay: float = 0.0) -> None:
        for ctrl in self._by_kind.get(kind_key, ()):
            self._queues[id(ctrl)].add_after(key, delay)

    def _follow(self, after: int) -> None:
        last = after
        while not self._stop.is_set():
            try:
                events = self.store.events_since(last)
            except GoneError:
                log.warning("event log compacted past %s; resyncing every controller", last)
                last = self.store.latest_resource_version()
                for ctrl in self.controllers:
                    self._resync(ctrl)
                continue
            except Exception:  # the store may be briefly unavailable; keep following
                log.exception("reading the event log failed")
                self._stop.wait(1.0)
                continue
            for event in events:
                last = event.resource_version
                self._dispatch(event)
            if not events:
                self.store.wait_for_change(last, 1.0)

    def _dispatch(self, event: WatchEvent) -> None:
        obj = event.object
        key = ObjectKey.of(obj)
        for ctrl in self._by_kind.get(event.kind_key, ()):
            self._queues[id(ctrl)].add(key)
        for ctrl in self._by_owned.get(event.kind_key, ()):
            for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
                if ref.get("controller") and ref.get("kind") == ctrl.kind.kind:
                    self._queues[id(ctrl)].add(ObjectKey(key.namespace, str(ref.get("name"))))

    def _on_process(self, status: ProcessStatus) -> None:
        kind_key = status.labels.get(LABEL_KIND)
        name = status.labels.get(LABEL_NAME)
        if kind_key and name:
            self.enqueue(kind_key, ObjectKey(status.labels.get(LABEL_NAMESPACE, ""), name))

    # -- workers ---------------------------------------------------------------------------
    def _work(self, ctrl: Controller) -> None:
        queue = self._queues[id(ctrl)]
        while not self._stop.is_set():
            key = queue.get(timeout=0.5)
            if key is None:
                continue
            try:
                result = ctrl.reconcile(key)
            except ConflictError:
                queue.add_rate_limited(key)  # someone else wrote first: re-read and retry
            except Exception:
                delay = queue.add_rate_limited(key)
                log.exception(
                    "reconcile %s %s failed; retrying in %.2fs", ctrl.kind.kind, key, delay
                )
            else:
                queue.forget(key)
                if result is not None and result.requeue_after is not None:
                    queue.add_after(key, result.requeue_after)
            finally:
                queue.done(key)
