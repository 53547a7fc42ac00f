"""The store's schema as SQLAlchemy Core tables (the Alembic migrations create exactly these).

* ``objects``: one row per stored object, keyed by (kind_key, namespace, name); cluster-scoped
  kinds use namespace ``""``. ``body`` is the whole object as JSON text. The primary key is the
  list index: lists scan it in (namespace, name) order.
* ``owner_refs``: (owner_uid, dependent_uid) for every ``metadata.ownerReferences`` entry, so
  finding an object's dependents for cascading deletion is an indexed query.
* ``events``: the watch log, one row per resourceVersion (every write makes exactly one event).
* ``store_state``: a single row holding the global resourceVersion counter and the newest
  resourceVersion removed from the event log by compaction.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# Names sort bytewise everywhere: PostgreSQL's default collation may follow a locale, which
# would order "a-b" and "ab" differently from SQLite.
Key = String().with_variant(String(collation="C"), "postgresql")

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

objects = Table(
    "objects",
    metadata,
    Column("kind_key", Key, primary_key=True),
    Column("namespace", Key, primary_key=True),
    Column("name", Key, primary_key=True),
    Column("uid", String, nullable=False, unique=True),
    Column("resource_version", BigInteger, nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("created_at", String, nullable=False),
    Column("body", Text, nullable=False),
)

owner_refs = Table(
    "owner_refs",
    metadata,
    Column("owner_uid", String, primary_key=True),
    Column(
        "dependent_uid",
        String,
        ForeignKey("objects.uid", ondelete="CASCADE"),
        primary_key=True,
    ),
    Index("ix_owner_refs_dependent_uid", "dependent_uid"),
)

events = Table(
    "events",
    metadata,
    Column("rv", BigInteger, primary_key=True, autoincrement=False),
    Column("type", String, nullable=False),
    Column("kind_key", String, nullable=False),
    Column("namespace", String, nullable=False),
    Column("name", String, nullable=False),
    Column("body", Text, nullable=False),
)

store_state = Table(
    "store_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("resource_version", BigInteger, nullable=False),
    Column("compacted_rv", BigInteger, nullable=False),
)
