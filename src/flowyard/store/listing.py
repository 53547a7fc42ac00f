"""Reading one page of a list: an indexed scan in (namespace, name) order after the
``continue`` key, with label and field selectors applied per object.

Selectors are checked in Python after the indexed query (labels live inside the JSON body), so
a filtered page reads rows in batches until it holds ``limit`` matches; equality terms on
``metadata.name``/``metadata.namespace`` narrow the query itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from flowyard.resources.meta import Resource
from flowyard.resources.selectors import FieldSelector, LabelSelector
from flowyard.store.tables import objects

Key = tuple[str, str]
"""(namespace, name): the position of an object in a list."""


@dataclass(frozen=True)
class Page:
    items: list[Resource]
    last: Key | None
    """The key to continue after; None on the last page."""
    remaining: int | None
    """How many objects follow (only without selectors, as in Kubernetes)."""


def list_query(kind_key: str, scope: str | None, fields: FieldSelector) -> Select[Any]:
    """The ordered query over one kind, in one namespace (``scope``) or all (None)."""
    query = select(objects.c.namespace, objects.c.name, objects.c.body).where(
        objects.c.kind_key == kind_key
    )
    if scope is not None:
        query = query.where(objects.c.namespace == scope)
    # Narrow the indexed scan by equality terms; the selector is still checked per item.
    if (name := fields.equals("metadata.name")) is not None:
        query = query.where(objects.c.name == name)
    if (namespace := fields.equals("metadata.namespace")) is not None:
        query = query.where(objects.c.namespace == namespace)
    return query.order_by(objects.c.namespace, objects.c.name)


def _after(query: Select[Any], key: Key) -> Select[Any]:
    return query.where(tuple_(objects.c.namespace, objects.c.name) > tuple_(*key))


def read_page(
    conn: Connection,
    query: Select[Any],
    after: Key | None,
    labels: LabelSelector,
    fields: FieldSelector,
    limit: int | None,
) -> Page:
    """The matching objects after key ``after`` (at most ``limit``). Rows are read in batches
    until the page holds ``limit`` matches plus one, which proves there is a next page."""
    filtering = not (labels.empty and fields.empty)
    batch = None if limit is None else (max(2 * limit, 500) if filtering else limit + 1)
    items: list[Resource] = []
    last: Key | None = None
    cursor = after
    while True:
        step = query if cursor is None else _after(query, cursor)
        rows = conn.execute(step if batch is None else step.limit(batch)).all()
        for row in rows:
            cursor = (row.namespace, row.name)
            body: Resource = orjson.loads(row.body)
            if not (labels.matches_object(body) and fields.matches(body)):
                continue
            if limit is not None and len(items) == limit:
                assert last is not None
                remaining = None if filtering else _count_after(conn, query, last)
                return Page(items, last, remaining)
            items.append(body)
            last = cursor
        if batch is None or len(rows) < batch:
            return Page(items, None, None)


def _count_after(conn: Connection, query: Select[Any], key: Key) -> int:
    counting = _after(query, key).with_only_columns(func.count()).order_by(None)
    return int(conn.execute(counting).scalar_one())
