"""One thread that notices process exits and runs timers (deadlines, SIGKILL after a grace).

Exits are noticed without polling where the kernel offers pid file descriptors (Linux 5.3+): a
pidfd becomes readable when its process ends, whether or not the process is our child, so the
same mechanism watches the processes we started and those adopted after a restart, hundreds at a
time, with one ``epoll``. Elsewhere (or with ``use_pidfd=False``) each watched process is probed
every ``poll_interval`` seconds instead.

Callbacks run on the watcher thread, outside the watcher's lock; each watch fires once.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import selectors
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_MAX_SLEEP = 5.0  # the loop wakes at least this often, whatever happens
Probe = Callable[[], bool]  # True while the process is still running


def open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid``, or None where pidfds are unsupported. ProcessLookupError if gone."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except ProcessLookupError:
        raise
    except OSError:  # ENOSYS on old kernels, EPERM in some sandboxes
        return None
    return fd


class Watcher:
    """Watches for process exits and runs timers on one daemon thread."""

    def __init__(
        self, on_exit: Callable[[Any], None], *, poll_interval: float = 0.2, name: str = "watch"
    ) -> None:
        self._on_exit = on_exit
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._stopping = False
        self._closed = False
        self._incoming: list[tuple[Any, int | None, Probe]] = []
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._polled: dict[Any, Probe] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name=f"flowyard-{name}", daemon=True)
        self._thread.start()

    def watch(self, token: Any, pidfd: int | None, probe: Probe) -> None:
        """Call ``on_exit(token)`` once the process ends: when ``pidfd`` turns readable, or
        (without a pidfd) when ``probe()`` returns False. The watcher owns ``pidfd`` from now."""
        with self._lock:
            if self._stopping:
                if pidfd is not None:
                    os.close(pidfd)
                return
            self._incoming.append((token, pidfd, probe))
        self._wake()

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` at ``time.monotonic() >= when`` (callbacks check their own state)."""
        with self._lock:
            heapq.heappush(self._timers, (when, next(self._counter), callback))
        self._wake()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close every pidfd; pending timers and watches are dropped."""
        with self._lock:
            self._stopping = True
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _wake(self) -> None:
        with self._lock:
            if self._closed:
                return  # the pipe's descriptors may belong to someone else by now
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._wake_w, b"x")

    def _run(self) -> None:
        try:
            while True:
                try:
                    if not self._step():
                        return
                except Exception:  # keep watching the other processes
                    log.exception("executor watcher step failed")
                    time.sleep(self._poll_interval)
        finally:
            self._close()

    def _step(self) -> bool:
        with self._lock:
            if self._stopping:
                return False
            incoming, self._incoming = self._incoming, []
            timeout = _MAX_SLEEP
            if self._timers:
                timeout = min(timeout, max(0.0, self._timers[0][0] - time.monotonic()))
        self._register(incoming)
        if self._polled:
            timeout = min(timeout, self._poll_interval)
        ended: list[Any] = []
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.read(self._wake_r, 4096)
                continue
            self._selector.unregister(key.fd)
            os.close(key.fd)
            ended.append(key.data)
        ended.extend(self._poll())
        for token in ended:
            self._call(self._on_exit, token)
        for callback in self._due_timers():
            self._call(callback)
        return True

    def _register(self, incoming: list[tuple[Any, int | None, Probe]]) -> None:
        for token, pidfd, probe in incoming:
            if pidfd is None:
                self._polled[token] = probe
            else:
                self._selector.register(pidfd, selectors.EVENT_READ, token)

    def _poll(self) -> list[Any]:
        ended = [token for token, probe in self._polled.items() if not self._alive(probe)]
        for token in ended:
            del self._polled[token]
        return ended

    def _due_timers(self) -> list[Callable[[], None]]:
        due: list[Callable[[], None]] = []
        now = time.monotonic()
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
        return due

    @staticmethod
    def _alive(probe: Probe) -> bool:
        try:
            return probe()
        except Exception:  # a broken probe must not stop the watcher
            log.exception("process probe failed; treating the process as ended")
            return False

    @staticmethod
    def _call(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # one failing callback must not stop the watcher
            log.exception("executor watcher callback failed")

    def _close(self) -> None:
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                os.close(key.fd)
        self._selector.close()
        with self._lock:
            self._closed = True
            os.close(self._wake_r)
            os.close(self._wake_w)
            for _, pidfd, _ in self._incoming:
                if pidfd is not None:
                    os.close(pidfd)
            self._incoming = []
