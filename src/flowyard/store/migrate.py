"""Schema migrations: bring a database to the newest schema when a store opens.

The Alembic scripts ship inside the package (``flowyard/store/migrations``); nothing reads an
``alembic.ini``. :func:`upgrade` runs on a connection the caller holds inside its write
transaction, so two processes opening the same empty database migrate it once, one after the
other. Alembic itself is imported only when there is something to migrate, which keeps opening
an up-to-date store (every server and CLI start) fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")

HEAD = "0001"
"""The newest revision in ``migrations/versions`` (a test checks that they agree)."""


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged scripts (for tools and tests)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest revision according to the scripts themselves."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts found in {MIGRATIONS}")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None for an empty database)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(value) if value is not None else None


def upgrade(connection: Connection) -> None:
    """Migrate to the newest schema (a no-op when already there)."""
    if current_revision(connection) == HEAD:
        return
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
