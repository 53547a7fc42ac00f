"""The initial store schema: objects, owner_refs, events, store_state.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_KEY = sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("kind_key", _KEY, nullable=False),
        sa.Column("namespace", _KEY, nullable=False),
        sa.Column("name", _KEY, nullable=False),
        sa.Column("uid", sa.String(), nullable=False),
        sa.Column("resource_version", sa.BigInteger(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("kind_key", "namespace", "name", name="pk_objects"),
        sa.UniqueConstraint("uid", name="uq_objects_uid"),
    )
    op.create_table(
        "owner_refs",
        sa.Column("owner_uid", sa.String(), nullable=False),
        sa.Column("dependent_uid", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("owner_uid", "dependent_uid", name="pk_owner_refs"),
        sa.ForeignKeyConstraint(
            ["dependent_uid"],
            ["objects.uid"],
            name="fk_owner_refs_dependent_uid",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_owner_refs_dependent_uid", "owner_refs", ["dependent_uid"])
    op.create_table(
        "events",
        sa.Column("rv", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("kind_key", sa.String(), nullable=False),
        sa.Column("namespace", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("rv", name="pk_events"),
    )
    state = op.create_table(
        "store_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("resource_version", sa.BigInteger(), nullable=False),
        sa.Column("compacted_rv", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_store_state"),
    )
    op.bulk_insert(state, [{"id": 1, "resource_version": 0, "compacted_rv": 0}])


def downgrade() -> None:
    op.drop_table("store_state")
    op.drop_table("events")
    op.drop_index("ix_owner_refs_dependent_uid", table_name="owner_refs")
    op.drop_table("owner_refs")
    op.drop_table("objects")
