"""Database engines for the store, and the process-wide write lock per database.

SQLite (the default) runs in WAL mode with ``synchronous=NORMAL``, a busy timeout and foreign
keys on. Transactions are begun explicitly: ``BEGIN IMMEDIATE`` for writes (so a writer takes the
database's write lock up front instead of failing with "database is locked" when it upgrades a
read lock), plain ``BEGIN`` for reads. Readers run concurrently with the writer.

PostgreSQL (``postgresql+psycopg://...``) uses the same code; writers take a transaction-scoped
advisory lock first, so writes from several processes commit in resourceVersion order.

Inside one process every store on the same database shares one :class:`SharedState`: the lock
that serializes write transactions and the condition that wakes watchers after a commit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, create_engine, make_url
from sqlalchemy.pool import StaticPool

from flowyard.errors import BadRequestError, UnavailableError

WRITE_OPTION = "flowyard_write"
"""Connection execution option that makes SQLite begin with ``BEGIN IMMEDIATE``."""

ADVISORY_LOCK_KEY = 0x666C6F77  # "flow": the PostgreSQL advisory lock all writers take
BUSY_TIMEOUT_MS = 30_000


@dataclass
class SharedState:
    """What all stores of one database in this process share."""

    write_lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(default_factory=threading.Condition)
    latest: int = 0

    def notify(self, resource_version: int) -> None:
        with self.changed:
            self.latest = max(self.latest, resource_version)
            self.changed.notify_all()


_SHARED: dict[str, SharedState] = {}
_SHARED_GUARD = threading.Lock()


def shared_state(url: URL) -> SharedState:
    """The state shared by all stores on the database at ``url`` in this process. Each
    in-memory SQLite store is its own database, so it gets its own state."""
    if is_sqlite_memory(url):
        return SharedState()
    if url.get_backend_name() == "sqlite":
        key = "sqlite:" + str(Path(str(url.database)).expanduser().resolve())
    else:
        key = url.render_as_string(hide_password=False)
    with _SHARED_GUARD:
        return _SHARED.setdefault(key, SharedState())


def is_sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_store_engine(url: str | URL) -> Engine:
    """An engine for ``url`` (``sqlite:///PATH``, ``sqlite://`` or ``postgresql+psycopg://``)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.drivername == "postgresql+psycopg":
            _require_psycopg()
        return create_engine(parsed, pool_size=5, max_overflow=20, pool_pre_ping=True)
    raise BadRequestError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: use "
        "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
    )


def _require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise UnavailableError(
            "a PostgreSQL database URL needs the psycopg driver: pip install 'flowyard[postgres]'"
        ) from exc


def _sqlite_engine(url: URL) -> Engine:
    memory = is_sqlite_memory(url)
    if memory:
        # One connection shared by all threads; the store serializes every use of it.
        engine = create_engine(
            "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
        )
    else:
        Path(str(url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            pool_size=8,
            max_overflow=32,
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: the "begin" hook below issues BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not memory:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
