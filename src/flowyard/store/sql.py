"""The SQL backend of :class:`~flowyard.store.base.BaseStore` (SQLite by default, PostgreSQL by
URL), keeping the contract in :mod:`flowyard.store.base`.

Writes go through one path: a process-wide lock per database, then a write transaction
(``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so the global resourceVersion
counter commits in order and a watcher reading ``events`` after resourceVersion N never misses
an event that commits later. Reads run concurrently in their own transactions.

Objects go in and come out as JSON text, so nothing a caller holds is shared with the store: the
store never mutates the dict passed in, and every returned dict is a fresh copy.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, make_url

from flowyard.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    FieldCause,
    GoneError,
    InvalidError,
    NotFoundError,
)
from flowyard.resources.meta import DEFAULT_NAMESPACE, Resource, new_uid, now_iso, random_suffix
from flowyard.resources.registry import REGISTRY, KindInfo
from flowyard.resources.selectors import (
    parse_field_selector,
    parse_label_selector,
)
from flowyard.store import gc
from flowyard.store.base import BaseStore, ListResult, Propagation, WatchEvent
from flowyard.store.engine import (
    ADVISORY_LOCK_KEY,
    WRITE_OPTION,
    create_store_engine,
    is_sqlite_memory,
    shared_state,
)
from flowyard.store.listing import list_query, read_page
from flowyard.store.migrate import upgrade
from flowyard.store.pagination import decode_continue, encode_continue
from flowyard.store.tables import events, objects, store_state
from flowyard.store.txn import StoredObject, WriteTx

DEFAULT_EVENT_LOG_SIZE = 100_000
GENERATE_NAME_ATTEMPTS = 8
SYSTEM_METADATA = (
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
"""Metadata only the store writes; client values are ignored (a different uid conflicts)."""
PROPAGATIONS = ("Background", "Foreground", "Orphan")


def _resource(info: KindInfo) -> str:
    """How Kubernetes names a kind in messages: ``jobs.batch``, ``events``."""
    return f"{info.plural}.{info.group}" if info.group else info.plural


def _details(info: KindInfo, name: str) -> dict[str, Any]:
    return {"name": name, "group": info.group, "kind": info.plural}


def _copy_in(obj: Resource) -> Resource:
    """A private deep copy of a caller's object (and proof that it is plain JSON)."""
    if not isinstance(obj, dict):
        raise BadRequestError(f"a resource must be a JSON object, not {type(obj).__name__}")
    try:
        body: Resource = orjson.loads(orjson.dumps(obj))
    except TypeError as exc:
        raise BadRequestError(f"the object is not plain JSON: {exc}") from exc
    md = body.get("metadata")
    if md is None:
        body["metadata"] = {}
    elif not isinstance(md, dict):
        raise BadRequestError("metadata must be a JSON object")
    return body


def _content(body: Resource) -> dict[str, Any]:
    """What ``generation`` tracks: every top-level field except metadata, status and type."""
    return {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata", "status")}


class SqlStore(BaseStore):
    """The store on a SQLAlchemy URL; opening it migrates the database to the newest schema.

    ``event_log_size`` bounds the watch log: older events are removed in batches and a watch
    from before them gets GoneError. ``poll_interval`` is how often waiters look for writes made
    by other processes (writes in this process wake them at once).
    """

    def __init__(
        self,
        url: str,
        *,
        event_log_size: int = DEFAULT_EVENT_LOG_SIZE,
        poll_interval: float = 0.25,
    ) -> None:
        if event_log_size < 1:
            raise ValueError("event_log_size must be at least 1")
        self.url = make_url(url)
        self._engine = create_store_engine(self.url)
        self._postgres = self.url.get_backend_name() == "postgresql"
        self._serialize_reads = is_sqlite_memory(self.url)
        self._shared = shared_state(self.url)
        self._event_log_size = event_log_size
        self._poll_interval = poll_interval
        with self._write_connection() as conn:
            upgrade(conn)
            latest = self._latest(conn)
        with self._shared.changed:
            # Reset, not max: the database behind this URL may have been replaced.
            self._shared.latest = latest

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def _write_connection(self) -> Iterator[Connection]:
        with self._shared.write_lock, self._engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if self._postgres:
                    conn.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
                yield conn

    @contextmanager
    def _writing(self) -> Iterator[WriteTx]:
        with self._write_connection() as conn:
            tx = WriteTx(conn, event_log_size=self._event_log_size)
            yield tx
            latest = tx.finish()
        # Committed: wake this process's waiters now (other processes find it by polling).
        self._shared.notify(latest)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        guard = self._shared.write_lock if self._serialize_reads else nullcontext()
        with guard, self._engine.connect() as conn:
            if self._postgres:
                # One snapshot for all statements of a read, like SQLite's read transaction.
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                yield conn

    # -- reads --------------------------------------------------------------------------

    def _namespace(self, info: KindInfo, namespace: str | None) -> str:
        if not info.namespaced:
            return ""
        return namespace or DEFAULT_NAMESPACE

    def get(self, info: KindInfo, namespace: str | None, name: str) -> Resource:
        query = select(objects.c.body).where(
            objects.c.kind_key == info.key,
            objects.c.namespace == self._namespace(info, namespace),
            objects.c.name == name,
        )
        with self._reading() as conn:
            body = conn.execute(query).scalar()
        if body is None:
            raise self._not_found(info, name)
        result: Resource = orjson.loads(body)
        return result

    def _not_found(self, info: KindInfo, name: str) -> NotFoundError:
        return NotFoundError(f'{_resource(info)} "{name}" not found', details=_details(info, name))

    def list(
        self,
        info: KindInfo,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector)
        if limit is not None and limit < 0:
            raise BadRequestError(f"invalid limit {limit}: must be 0 (no limit) or more")
        after = decode_continue(continue_token) if continue_token else None
        scope = "" if not info.namespaced else namespace or None
        query = list_query(info.key, scope, fields)
        with self._reading() as conn:
            # Read the version first: a watch from it may repeat a change, but never misses one.
            rv = self._latest(conn)
            page = read_page(conn, query, after, labels, fields, limit or None)
        token = encode_continue(*page.last) if page.last is not None else None
        return ListResult(page.items, str(rv), token, page.remaining)

    def _latest(self, conn: Connection) -> int:
        query = select(store_state.c.resource_version).where(store_state.c.id == 1)
        return int(conn.execute(query).scalar_one())

    def latest_resource_version(self) -> int:
        with self._reading() as conn:
            return self._latest(conn)

    def events_since(
        self, resource_version: int, *, limit: int = 1000
    ) -> builtins.list[WatchEvent]:
        query = select(events).where(events.c.rv > resource_version).order_by(events.c.rv)
        with self._reading() as conn:
            rows = conn.execute(query.limit(max(1, limit))).all()
            compacted = conn.execute(
                select(store_state.c.compacted_rv).where(store_state.c.id == 1)
            ).scalar_one()
        # Checked after reading, so a compaction that ran in between is noticed.
        if resource_version < compacted:
            raise GoneError(
                f"too old resource version: {resource_version} ({compacted}); the event log "
                f"keeps only changes after {compacted}: list again and watch from the list's "
                "resourceVersion",
                details={"resourceVersion": str(resource_version)},
            )
        return [
            WatchEvent(row.type, orjson.loads(row.body), int(row.rv), row.kind_key) for row in rows
        ]

    def wait_for_change(self, after: int, timeout: float) -> int:
        deadline = time.monotonic() + max(0.0, timeout)
        changed = self._shared.changed
        while True:
            with changed:
                # Commits made by this process are known without asking the database.
                if self._shared.latest > after:
                    return self._shared.latest
            latest = self.latest_resource_version()  # also sees other processes' commits
            remaining = deadline - time.monotonic()
            if latest > after or remaining <= 0:
                return latest
            with changed:
                # A local commit since the read above has already raised `latest`: skip waiting.
                if self._shared.latest <= after:
                    changed.wait(min(remaining, self._poll_interval))

    # -- writes -------------------------------------------------------------------------

    def create(self, obj: Resource) -> Resource:
        body = _copy_in(obj)
        info = REGISTRY.get(body.get("apiVersion"), body.get("kind"))
        md = body["metadata"]
        namespace = self._namespace(info, md.get("namespace"))
        if info.namespaced:
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)
        for key in (*SYSTEM_METADATA, "resourceVersion"):
            md.pop(key, None)
        md["uid"] = new_uid()
        md["generation"] = 1
        md["creationTimestamp"] = now_iso()
        with self._writing() as tx:
            md["name"] = self._free_name(tx, info, namespace, md)
            tx.insert(info.key, namespace, body)
        return body

    def _free_name(self, tx: WriteTx, info: KindInfo, namespace: str, md: dict[str, Any]) -> str:
        name, prefix = md.get("name"), md.get("generateName")
        if name:
            if tx.find(info.key, namespace, str(name)) is not None:
                raise AlreadyExistsError(
                    f'{_resource(info)} "{name}" already exists',
                    details=_details(info, str(name)),
                )
            return str(name)
        if not prefix or not isinstance(prefix, str):
            raise InvalidError(
                f"{info.kind} is invalid: metadata.name: Required value: name or generateName "
                "is required",
                causes=[
                    FieldCause(
                        "metadata.name",
                        "Required value: name or generateName is required",
                        "FieldValueRequired",
                    )
                ],
            )
        for _ in range(GENERATE_NAME_ATTEMPTS):
            candidate = prefix + random_suffix()
            if tx.find(info.key, namespace, candidate) is None:
                return candidate
        raise AlreadyExistsError(
            f'{_resource(info)} with generateName "{prefix}": no free name found after '
            f"{GENERATE_NAME_ATTEMPTS} tries; use a longer or different prefix",
            details=_details(info, prefix),
        )

    def _load_for_write(self, tx: WriteTx, body: Resource) -> tuple[KindInfo, StoredObject]:
        """The kind and stored state of ``body``, checking its uid and resourceVersion."""
        info = REGISTRY.get(body.get("apiVersion"), body.get("kind"))
        md = body["metadata"]
        name = str(md.get("name") or "")
        if not name:
            raise InvalidError(
                f"{info.kind} is invalid: metadata.name: Required value",
                causes=[FieldCause("metadata.name", "Required value", "FieldValueRequired")],
            )
        stored = tx.find(info.key, self._namespace(info, md.get("namespace")), name)
        if stored is None:
            raise self._not_found(info, name)
        uid = md.get("uid")
        if uid and uid != stored.uid:
            raise ConflictError(
                f'Operation cannot be fulfilled on {_resource(info)} "{name}": Precondition '
                f"failed: UID in object meta: {uid}, stored UID: {stored.uid} (the object was "
                "deleted and created again; read it again)",
                details=_details(info, name),
            )
        rv = md.get("resourceVersion")
        if rv not in (None, "") and str(rv) != stored.resource_version:
            raise ConflictError(
                f'Operation cannot be fulfilled on {_resource(info)} "{name}": the object has '
                "been modified; please apply your changes to the latest version and try again",
                details=_details(info, name),
            )
        return info, stored

    def update(self, obj: Resource) -> Resource:
        body = _copy_in(obj)
        with self._writing() as tx:
            info, stored = self._load_for_write(tx, body)
            new = _merge_update(info, stored.body, body)
            if _finalized(info, stored.body, new):
                tx.remove(stored, new)
                gc.collect_dependents(tx, stored.uid, "Background")
            elif _unchanged(stored.body, new):
                return stored.body  # nothing changed: no write, no event (as Kubernetes)
            else:
                tx.replace(stored, new)
        return new

    def update_status(self, obj: Resource) -> Resource:
        body = _copy_in(obj)
        with self._writing() as tx:
            _, stored = self._load_for_write(tx, body)
            new = _copy_in(stored.body)
            if "status" in body:
                new["status"] = body["status"]
            else:
                new.pop("status", None)
            if _unchanged(stored.body, new):
                return stored.body  # nothing changed: no write, no event (as Kubernetes)
            tx.replace(stored, new)
        return new

    def delete(
        self,
        info: KindInfo,
        namespace: str | None,
        name: str,
        *,
        propagation: Propagation = "Background",
        uid: str | None = None,
    ) -> Resource:
        if propagation not in PROPAGATIONS:
            raise BadRequestError(
                f"invalid propagationPolicy {propagation!r}: use one of {', '.join(PROPAGATIONS)}"
            )
        with self._writing() as tx:
            stored = tx.find(info.key, self._namespace(info, namespace), name)
            if stored is None:
                raise self._not_found(info, name)
            if uid and uid != stored.uid:
                raise ConflictError(
                    f'Operation cannot be fulfilled on {_resource(info)} "{name}": Precondition '
                    f"failed: UID in precondition: {uid}, UID in object meta: {stored.uid}",
                    details=_details(info, name),
                )
            body = stored.body
            if body["metadata"].get("finalizers"):
                if not body["metadata"].get("deletionTimestamp"):
                    gc.mark_deleting(body)
                    tx.replace(stored, body)
                if propagation == "Orphan":
                    gc.orphan_dependents(tx, stored.uid)
                return body
            tx.remove(stored, body)
            gc.collect_dependents(tx, stored.uid, propagation)
        return body

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _unchanged(old: Resource, new: Resource) -> bool:
    """Whether writing ``new`` over ``old`` would change anything but the resourceVersion."""
    rv = old["metadata"].get("resourceVersion")
    return {**new, "metadata": {**new["metadata"], "resourceVersion": rv}} == old


def _merge_update(info: KindInfo, old: Resource, body: Resource) -> Resource:
    """The object an update stores: the client's metadata and content, the stored status, and
    the system-owned metadata of the stored object."""
    new = {k: v for k, v in body.items() if k != "status"}
    if "status" in old:
        new["status"] = old["status"]
    old_md, new_md = old["metadata"], dict(body["metadata"])
    for key in SYSTEM_METADATA:
        if key in old_md:
            new_md[key] = old_md[key]
        else:
            new_md.pop(key, None)
    new_md["name"] = old_md["name"]
    if info.namespaced:
        new_md["namespace"] = old_md["namespace"]
    else:
        new_md.pop("namespace", None)
    if _content(new) != _content(old):
        new_md["generation"] = int(old_md.get("generation") or 1) + 1
    new["metadata"] = new_md
    return new


def _finalized(info: KindInfo, old: Resource, new: Resource) -> bool:
    """Whether an update of an object that is being deleted cleared its last finalizer (so the
    object goes). Adding finalizers to such an object is forbidden, as in Kubernetes."""
    old_md, new_md = old["metadata"], new["metadata"]
    if not old_md.get("deletionTimestamp"):
        return False
    added = set(new_md.get("finalizers") or ()) - set(old_md.get("finalizers") or ())
    if added:
        raise InvalidError(
            f'{info.kind} "{old_md["name"]}" is invalid: metadata.finalizers: Forbidden: no new '
            f"finalizers can be added if the object is being deleted, found new finalizers "
            f"{sorted(added)}",
            causes=[FieldCause("metadata.finalizers", "Forbidden", "FieldValueForbidden")],
        )
    return not new_md.get("finalizers")
