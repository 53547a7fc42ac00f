"""Fixtures for the store contract suite: every test runs once on SQLite and once on a real
PostgreSQL server (started for the session by scripts/postgres.sh, one fresh database per test).

Without PostgreSQL the postgres half is skipped, except when ``CI=true``: then it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from flowyard.store.sql import SqlStore

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "postgres.sh"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: PostgreSQL is required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the ``postgres`` database of a throwaway server."""
    directory = tempfile.mkdtemp(prefix="flowyard-pg-")
    try:
        proc = subprocess.run(
            ["bash", str(SCRIPT), "start", directory],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        _unavailable(f"scripts/postgres.sh could not run: {exc}")
        raise
    if proc.returncode != 0 or not proc.stdout.strip():
        shutil.rmtree(directory, ignore_errors=True)
        _unavailable(f"PostgreSQL could not be started: {proc.stderr.strip()[-2000:]}")
    engine = create_engine(proc.stdout.strip().splitlines()[-1], isolation_level="AUTOCOMMIT")
    try:
        yield engine
    finally:
        engine.dispose()
        subprocess.run(
            ["bash", str(SCRIPT), "stop", directory], capture_output=True, timeout=120, check=False
        )
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of the parametrized backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    admin: Engine = request.getfixturevalue("postgres_admin")
    name = f"flowyard_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin.url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def make_store(store_url: str) -> Iterator[Callable[..., SqlStore]]:
    """Opens more stores on the test's database (closed at the end of the test)."""
    opened: list[SqlStore] = []

    def make(**options: Any) -> SqlStore:
        store = SqlStore(store_url, poll_interval=0.05, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., SqlStore]) -> SqlStore:
    return make_store()
