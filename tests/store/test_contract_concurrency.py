"""The store contract under concurrency: many threads (and processes) writing at once never see
"database is locked", never lose an update, and leave a dense, strictly increasing event log."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine

from flowyard.errors import ConflictError
from flowyard.resources.kinds import JOB
from flowyard.store.sql import SqlStore
from tests.store.objects import job

ROOT = Path(__file__).resolve().parents[2]
THREADS = 16
OBJECTS_PER_THREAD = 8
INCREMENTS_PER_THREAD = 5


def _increment(store: SqlStore) -> int:
    """Read-modify-write of the shared counter with optimistic concurrency; returns retries."""
    for attempt in range(1000):
        current = store.get(JOB, "default", "counter")
        md = current["metadata"]
        annotations = dict(md.get("annotations") or {})
        annotations["count"] = str(int(annotations.get("count", "0")) + 1)
        try:
            store.update(dict(current, metadata={**md, "annotations": annotations}))
            return attempt
        except ConflictError:
            continue
    raise AssertionError("counter update kept conflicting")


def _check_event_log(store: SqlStore) -> None:
    """Every resourceVersion from 1 to the latest has exactly one event, in order."""
    latest = store.latest_resource_version()
    log = store.events_since(0, limit=latest + 10)
    assert [e.resource_version for e in log] == list(range(1, latest + 1))


def _integrity_check(store: SqlStore) -> None:
    if store.url.get_backend_name() != "sqlite":
        return
    engine = create_engine(store.url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    finally:
        engine.dispose()


def test_concurrent_writers_lose_nothing(
    store: SqlStore, make_store: Callable[..., SqlStore]
) -> None:
    other = make_store()  # a second engine on the same database
    store.create(job("counter"))
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def work(index: int) -> None:
        target = store if index % 2 else other
        try:
            barrier.wait(timeout=60)
            for i in range(OBJECTS_PER_THREAD):
                created = target.create(job(f"t{index:02d}-{i}", labels={"thread": str(index)}))
                target.update_status(dict(created, status={"active": i}))
                if i < INCREMENTS_PER_THREAD:
                    _increment(target)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    counter = store.get(JOB, "default", "counter")
    assert counter["metadata"]["annotations"]["count"] == str(THREADS * INCREMENTS_PER_THREAD)
    listed = store.list(JOB, label_selector="thread").items
    assert len(listed) == THREADS * OBJECTS_PER_THREAD
    assert all(item["status"]["active"] >= 0 for item in listed)
    _check_event_log(store)
    _integrity_check(store)


def test_concurrent_processes_share_one_counter(store: SqlStore) -> None:
    script = (
        "import sys\n"
        "from flowyard.store import open_store\n"
        "from tests.store.objects import job\n"
        "store = open_store(sys.argv[1])\n"
        "for i in range(40):\n"
        "    store.create(job(f'p{sys.argv[2]}-{i}'))\n"
        "store.close()\n"
    )
    url = store.url.render_as_string(hide_password=False)
    children = [
        subprocess.Popen([sys.executable, "-c", script, url, str(n)], cwd=ROOT) for n in range(3)
    ]
    for i in range(40):  # this process writes at the same time
        store.create(job(f"main-{i}"))
    assert [child.wait(timeout=120) for child in children] == [0, 0, 0]
    assert len(store.list(JOB).items) == 160
    _check_event_log(store)
    _integrity_check(store)
