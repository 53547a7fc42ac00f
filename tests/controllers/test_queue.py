from __future__ import annotations

import threading
import time

from flowyard.controllers.queue import WorkQueue


def test_deduplicates_queued_keys() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("a")
    q.add("b")
    assert [q.get(0.1), q.get(0.1), q.get(0.01)] == ["a", "b", None]


def test_key_in_progress_is_requeued_once_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get(0.1) == "a"
    q.add("a")
    q.add("a")
    assert q.get(0.01) is None  # not handed to a second worker while processing
    q.done("a")
    assert q.get(0.1) == "a"
    q.done("a")
    assert q.get(0.01) is None


def test_add_after_delays_and_rate_limit_grows() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.05, max_delay=0.2)
    q.add_after("later", 0.1)
    assert q.get(0.01) is None
    assert q.get(1.0) == "later"
    q.done("later")
    delays = [q.add_rate_limited("x") for _ in range(5)]
    assert delays == [0.05, 0.1, 0.2, 0.2, 0.2]
    q.forget("x")
    assert q.add_rate_limited("x") == 0.05


def test_close_wakes_blocked_workers() -> None:
    q: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    thread = threading.Thread(target=lambda: got.append(q.get()))
    thread.start()
    time.sleep(0.05)
    q.close()
    thread.join(2)
    assert got == [None]
