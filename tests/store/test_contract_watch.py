"""The store contract, watch half: ordered events from a resourceVersion, many watchers at once,
waiting for changes (also made by another process) and the bounded event log (GoneError)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from flowyard.errors import GoneError
from flowyard.resources.kinds import JOB
from flowyard.store.base import WatchEvent
from flowyard.store.sql import SqlStore
from flowyard.store.tables import events
from tests.store.objects import event, job, namespace

ROOT = Path(__file__).resolve().parents[2]


def summary(items: list[WatchEvent]) -> list[tuple[str, str, str]]:
    return [(e.type, e.kind_key, e.object["metadata"]["name"]) for e in items]


def test_watch_from_resource_version_in_order(store: SqlStore) -> None:
    store.create(job("before"))
    start = store.latest_resource_version()
    created = store.create(job("a"))
    store.update(dict(created, spec={**created["spec"], "parallelism": 2}))
    store.update_status({**job("a"), "status": {"active": 1}})
    store.delete(JOB, "default", "a")
    stop = threading.Event()
    seen = list(itertools.islice(store.watch(JOB, resource_version=start, stop=stop), 4))
    assert [e.type for e in seen] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    assert [e.resource_version for e in seen] == list(range(start + 1, start + 5))
    assert all(e.object["metadata"]["resourceVersion"] == str(e.resource_version) for e in seen)
    assert seen[1].object["spec"]["parallelism"] == 2
    assert seen[2].object["status"] == {"active": 1}
    assert seen[3].object["metadata"]["uid"] == created["metadata"]["uid"]


def test_live_watch_filters_kind_and_namespace(store: SqlStore) -> None:
    stop = threading.Event()
    got: list[WatchEvent] = []

    def follow() -> None:
        for item in store.watch(JOB, "team", stop=stop, poll_seconds=0.05):
            got.append(item)
            if len(got) == 2:
                stop.set()

    start = store.latest_resource_version()
    watcher = threading.Thread(target=follow)
    watcher.start()
    store.create(job("other-ns", "default"))
    owner = store.create(job("a", "team"))
    store.create(event("ev", owner, namespace="team"))
    store.create(namespace("team"))
    store.delete(JOB, "team", "a")
    watcher.join(timeout=60)
    assert not watcher.is_alive()
    assert summary(got) == [("ADDED", "Job.batch", "a"), ("DELETED", "Job.batch", "a")]
    everything = store.events_since(start)
    assert summary(everything) == [
        ("ADDED", "Job.batch", "other-ns"),
        ("ADDED", "Job.batch", "a"),
        ("ADDED", "Event", "ev"),
        ("ADDED", "Namespace", "team"),
        ("DELETED", "Job.batch", "a"),
    ]


def test_list_then_watch_misses_nothing(store: SqlStore) -> None:
    store.create(job("a"))
    listed = store.list(JOB)
    store.create(job("b"))
    after = store.events_since(int(listed.resource_version))
    assert summary(after) == [("ADDED", "Job.batch", "b")]


def test_many_watchers_see_the_same_sequence(
    store: SqlStore, make_store: Callable[..., SqlStore]
) -> None:
    other = make_store()
    start = store.latest_resource_version()
    writes_per_writer, writers = 10, 4
    expected = writers * writes_per_writer * 3  # create, status update, delete
    stop = threading.Event()
    results: dict[int, list[tuple[int, str, str]]] = {}

    def follow(index: int) -> None:
        source = store if index % 2 else other
        seen = results.setdefault(index, [])
        for item in source.watch(None, resource_version=start, stop=stop, poll_seconds=0.1):
            seen.append((item.resource_version, item.type, item.object["metadata"]["name"]))
            if len(seen) == expected:
                return

    def write(index: int) -> None:
        target = store if index % 2 else other
        for i in range(writes_per_writer):
            name = f"w{index}-{i}"
            target.create(job(name, labels={"writer": str(index)}))
            target.update_status({**job(name), "status": {"succeeded": 1}})
            target.delete(JOB, "default", name)

    watchers = [threading.Thread(target=follow, args=(i,)) for i in range(20)]
    producers = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in watchers + producers:
        thread.start()
    for thread in producers + watchers:
        thread.join(timeout=120)
    stop.set()
    assert not any(t.is_alive() for t in watchers + producers)
    log = store.events_since(start, limit=expected + 10)
    reference = [(e.resource_version, e.type, e.object["metadata"]["name"]) for e in log]
    assert [rv for rv, _, _ in reference] == list(range(start + 1, start + expected + 1))
    assert len(results) == 20
    for seen in results.values():
        assert seen == reference


def test_events_since_limit(store: SqlStore) -> None:
    for i in range(5):
        store.create(job(f"j{i}"))
    first = store.events_since(0, limit=2)
    assert [e.resource_version for e in first] == [1, 2]
    assert [e.resource_version for e in store.events_since(2, limit=10)] == [3, 4, 5]
    assert store.events_since(5) == []


def test_wait_for_change(store: SqlStore) -> None:
    store.create(job("a"))
    assert store.wait_for_change(0, timeout=5) == 1
    assert store.wait_for_change(1, timeout=0.1) == 1  # nothing new: returns at the timeout
    result: list[int] = []
    waiter = threading.Thread(target=lambda: result.append(store.wait_for_change(1, timeout=60)))
    waiter.start()
    store.create(job("b"))
    waiter.join(timeout=60)
    assert result == [2]


def test_wait_for_change_sees_another_process(store: SqlStore) -> None:
    script = (
        "import sys, time\n"
        "from flowyard.store import open_store\n"
        "from tests.store.objects import job\n"
        "store = open_store(sys.argv[1])\n"
        "time.sleep(0.3)\n"
        "store.create(job('from-child'))\n"
        "store.close()\n"
    )
    url = store.url.render_as_string(hide_password=False)
    before = store.latest_resource_version()
    child = subprocess.Popen([sys.executable, "-c", script, url], cwd=ROOT)
    try:
        latest = store.wait_for_change(before, timeout=60)
    finally:
        assert child.wait(timeout=60) == 0
    assert latest == before + 1
    assert store.get(JOB, "default", "from-child")["metadata"]["resourceVersion"] == str(latest)


def test_compacted_resource_version_is_gone(make_store: Callable[..., SqlStore]) -> None:
    store = make_store(event_log_size=5)
    for i in range(20):
        store.create(job(f"j{i}"))
    with pytest.raises(GoneError, match="too old resource version: 0") as err:
        store.events_since(0)
    assert err.value.code == 410
    with pytest.raises(GoneError):
        next(store.watch(JOB, resource_version=3))
    kept = store.events_since(15)
    assert [e.resource_version for e in kept] == [16, 17, 18, 19, 20]
    engine = create_engine(store.url)
    try:  # the log stays bounded: its size plus one compaction batch
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(events)).scalar_one() <= 6
    finally:
        engine.dispose()
    assert store.get(JOB, "default", "j0")["metadata"]["name"] == "j0"
