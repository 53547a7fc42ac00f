"""Alembic environment for the store. Runs on the connection that :func:`upgrade` passes in
``config.attributes["connection"]`` (the store opens it, already inside a write transaction),
so no ``alembic.ini`` and no logging setup are needed at runtime."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from flowyard.store.tables import metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "flowyard's migrations run through flowyard.store.migrate.upgrade(), which passes "
            "an open connection; the alembic command line is not supported"
        )
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
