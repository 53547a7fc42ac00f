"""Opening a store migrates the database (Alembic, packaged scripts) and is idempotent; the
default URL and the SQLite settings."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, inspect, select

from flowyard.resources.kinds import JOB
from flowyard.store import open_store
from flowyard.store.migrate import HEAD, head_revision
from flowyard.store.sql import SqlStore
from flowyard.store.tables import metadata, store_state
from tests.store.objects import job

TABLES = {"objects", "owner_refs", "events", "store_state", "alembic_version"}


def _schema_report(url: str) -> tuple[set[str], str | None, list[object], int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            context = MigrationContext.configure(conn)
            diff = compare_metadata(context, metadata)
            rows = conn.execute(select(func.count()).select_from(store_state)).scalar_one()
            return tables, context.get_current_revision(), diff, rows
    finally:
        engine.dispose()


def test_migration_creates_schema_and_is_idempotent(store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.connect() as conn:
        assert inspect(conn).get_table_names() == []
    engine.dispose()
    first = SqlStore(store_url)
    first.create(job("a"))
    first.close()
    tables, revision, diff, rows = _schema_report(store_url)
    assert tables >= TABLES
    assert revision == head_revision()
    assert diff == [], "the migrations must create exactly flowyard.store.tables"
    assert rows == 1
    again = SqlStore(store_url)  # reopening: nothing to migrate, data kept
    assert again.get(JOB, "default", "a")["metadata"]["resourceVersion"] == "1"
    again.close()
    assert _schema_report(store_url)[1:] == (head_revision(), [], 1)


def test_head_constant_matches_the_scripts() -> None:
    assert head_revision() == HEAD


def test_open_store_defaults_to_sqlite_in_home(isolated_home: Path) -> None:
    store = open_store()
    try:
        store.create(job("a"))
    finally:
        store.close()
    path = isolated_home / "flowyard.db"
    assert path.exists()
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_open_store_reads_database_url_from_environment(
    isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "elsewhere" / "db.sqlite"
    monkeypatch.setenv("FLOWYARD_DATABASE_URL", f"sqlite:///{target}")
    store = open_store()
    store.close()
    assert target.exists() and not (isolated_home / "flowyard.db").exists()


def test_in_memory_store_serves_threads() -> None:
    store = open_store("sqlite://")
    try:
        errors: list[BaseException] = []

        def work(index: int) -> None:
            try:
                for i in range(10):
                    store.create(job(f"t{index}-{i}"))
                    store.list(JOB, limit=5)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == [] and len(store.list(JOB).items) == 40
        assert store.latest_resource_version() == 40
    finally:
        store.close()


def test_in_memory_stores_are_separate_databases() -> None:
    first, second = open_store("sqlite://"), open_store("sqlite://")
    try:
        first.create(job("a"))
        assert second.list(JOB).items == []
        # A write to the first must not wake (or mislead) waiters on the second.
        assert second.wait_for_change(0, timeout=0.2) == 0
    finally:
        first.close()
        second.close()
