"""One write transaction of the SQL store: row operations that each take the next
resourceVersion and append exactly one event to the watch log.

A :class:`WriteTx` only exists while its store holds the write lock (and, on SQLite, the
database's write lock via ``BEGIN IMMEDIATE``; on PostgreSQL an advisory lock), so reading the
counter once at the start and writing it back in :meth:`WriteTx.finish` is race-free.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Row

from flowyard.resources.meta import Resource
from flowyard.store.base import EventType
from flowyard.store.tables import events, objects, owner_refs, store_state


@dataclass
class StoredObject:
    """A row of ``objects`` with its body decoded (a private copy the caller may change)."""

    kind_key: str
    namespace: str
    name: str
    uid: str
    body: Resource

    @property
    def resource_version(self) -> str:
        return str(self.body["metadata"].get("resourceVersion", ""))


def decode(row: Row[Any]) -> StoredObject:
    return StoredObject(row.kind_key, row.namespace, row.name, row.uid, orjson.loads(row.body))


def owner_uids(body: Resource) -> set[str]:
    """The uids named by ``metadata.ownerReferences``."""
    refs = (body.get("metadata") or {}).get("ownerReferences") or []
    return {
        ref["uid"]
        for ref in refs
        if isinstance(ref, dict) and isinstance(ref.get("uid"), str) and ref["uid"]
    }


def dumps(body: Resource) -> str:
    return orjson.dumps(body).decode()


class WriteTx:
    """Row operations inside one write transaction; call :meth:`finish` before committing."""

    def __init__(self, conn: Connection, *, event_log_size: int) -> None:
        self.conn = conn
        self._log_size = event_log_size
        # Compact in batches so the delete runs once per many writes, not on every write.
        self._compact_slack = max(1, min(1000, event_log_size // 10))
        state = conn.execute(
            select(store_state.c.resource_version, store_state.c.compacted_rv).where(
                store_state.c.id == 1
            )
        ).one()
        self._start = self.resource_version = int(state.resource_version)
        self.compacted = int(state.compacted_rv)

    def find(self, kind_key: str, namespace: str, name: str) -> StoredObject | None:
        row = self.conn.execute(
            select(objects).where(
                objects.c.kind_key == kind_key,
                objects.c.namespace == namespace,
                objects.c.name == name,
            )
        ).first()
        return decode(row) if row is not None else None

    def dependents(self, owner_uid: str) -> list[StoredObject]:
        """Objects whose ownerReferences name ``owner_uid``, in key order."""
        query = (
            select(objects)
            .join(owner_refs, owner_refs.c.dependent_uid == objects.c.uid)
            .where(owner_refs.c.owner_uid == owner_uid)
            .order_by(objects.c.kind_key, objects.c.namespace, objects.c.name)
        )
        return [decode(row) for row in self.conn.execute(query)]

    def existing_uids(self, uids: Iterable[str]) -> set[str]:
        wanted = list(uids)
        if not wanted:
            return set()
        query = select(objects.c.uid).where(objects.c.uid.in_(wanted))
        return {str(uid) for uid in self.conn.execute(query).scalars()}

    def _stamp(self, body: Resource) -> int:
        self.resource_version += 1
        body["metadata"]["resourceVersion"] = str(self.resource_version)
        return self.resource_version

    def insert(self, kind_key: str, namespace: str, body: Resource) -> None:
        """Store a new object (its metadata must hold name and uid) and log ADDED."""
        rv = self._stamp(body)
        md = body["metadata"]
        text = dumps(body)
        self.conn.execute(
            insert(objects).values(
                kind_key=kind_key,
                namespace=namespace,
                name=md["name"],
                uid=md["uid"],
                resource_version=rv,
                generation=int(md.get("generation") or 1),
                created_at=str(md.get("creationTimestamp") or ""),
                body=text,
            )
        )
        self._set_owners(md["uid"], set(), owner_uids(body))
        self._log("ADDED", kind_key, namespace, md["name"], rv, text)

    def replace(self, stored: StoredObject, body: Resource) -> None:
        """Overwrite a stored object with ``body`` and log MODIFIED."""
        rv = self._stamp(body)
        text = dumps(body)
        self.conn.execute(
            update(objects)
            .where(objects.c.uid == stored.uid)
            .values(
                resource_version=rv,
                generation=int(body["metadata"].get("generation") or 1),
                body=text,
            )
        )
        self._set_owners(stored.uid, owner_uids(stored.body), owner_uids(body))
        self._log("MODIFIED", stored.kind_key, stored.namespace, stored.name, rv, text)

    def remove(self, stored: StoredObject, body: Resource) -> None:
        """Delete a stored object; log DELETED with ``body`` (its last state)."""
        rv = self._stamp(body)
        self.conn.execute(delete(owner_refs).where(owner_refs.c.dependent_uid == stored.uid))
        self.conn.execute(delete(objects).where(objects.c.uid == stored.uid))
        self._log("DELETED", stored.kind_key, stored.namespace, stored.name, rv, dumps(body))

    def _set_owners(self, uid: str, old: set[str], new: set[str]) -> None:
        gone, added = old - new, new - old
        if gone:
            self.conn.execute(
                delete(owner_refs).where(
                    owner_refs.c.dependent_uid == uid, owner_refs.c.owner_uid.in_(list(gone))
                )
            )
        if added:
            rows = [{"owner_uid": owner, "dependent_uid": uid} for owner in sorted(added)]
            self.conn.execute(insert(owner_refs), rows)

    def _log(
        self, kind: EventType, kind_key: str, namespace: str, name: str, rv: int, text: str
    ) -> None:
        self.conn.execute(
            insert(events).values(
                rv=rv, type=kind, kind_key=kind_key, namespace=namespace, name=name, body=text
            )
        )

    def finish(self) -> int:
        """Save the counter and compact the event log; returns the newest resourceVersion."""
        if self.resource_version == self._start:
            return self.resource_version
        if self.resource_version - self.compacted > self._log_size + self._compact_slack:
            self.compacted = self.resource_version - self._log_size
            self.conn.execute(delete(events).where(events.c.rv <= self.compacted))
        self.conn.execute(
            update(store_state)
            .where(store_state.c.id == 1)
            .values(resource_version=self.resource_version, compacted_rv=self.compacted)
        )
        return self.resource_version
