"""Delivery of status changes to subscribers, in order, on a thread of their own.

The executor queues a status snapshot while it holds its lock (so the queue order is the order
of the changes) and this thread calls the subscribers without any executor lock held, so a
subscriber may call back into the executor (``status``, ``launch``, ``kill``) freely, and a slow
subscriber delays only later notifications, never the executor.
"""

from __future__ import annotations

import logging
import queue
import threading

from flowyard.executors.base import ProcessStatus, StatusCallback

log = logging.getLogger(__name__)

_STOP = object()


class Dispatcher:
    """Calls every subscriber with every queued status, in queue order."""

    def __init__(self, name: str = "events") -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._subscribers: list[StatusCallback] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"flowyard-{name}", daemon=True)
        self._thread.start()

    def subscribe(self, callback: StatusCallback) -> None:
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: StatusCallback) -> None:
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def publish(self, status: ProcessStatus) -> None:
        """Queue ``status`` for the subscribers (a no-op while there are none: subscribing is
        forward-looking, and this spares every launch a thread wake-up)."""
        if self._subscribers:
            self._queue.put(status)

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then stop."""
        self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, ProcessStatus)
            with self._lock:
                subscribers = list(self._subscribers)
            for callback in subscribers:
                try:
                    callback(item)
                except Exception:  # a broken subscriber must not silence the others
                    log.exception("executor subscriber %r failed", callback)
