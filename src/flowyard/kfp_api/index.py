"""An in-memory index of the KFP-visible objects, kept current from the store's event log.

KFP addresses everything by id and lists with arbitrary filters and sorts; the store lists in
(namespace, name) order and parses every body it scans. The index keeps one small summary row
per object (id, namespace, name, resourceVersion and the filterable fields), so get-by-id is a
dict lookup, and a list page is a binary search in an :class:`~flowyard.kfp_api.orders.Order`
(rows kept sorted by the requested field, built on first use of that field and then maintained
as rows change) plus a walk over the rows it returns.

The page's objects come from a bounded cache of stored bodies (orjson bytes) checked against the
row's resourceVersion, so a warm page reads nothing from the store; a miss reads one object.

Consistency: :meth:`Index.sync` runs before every use. It applies the store events after the
last one seen (all of them, so a caller sees its own writes), and re-reads everything when the
event log has been compacted past that point (GoneError) or on first use.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from flowyard.errors import GoneError
from flowyard.kfp_api.orders import Order, SortKey, walk
from flowyard.resources.meta import Resource
from flowyard.resources.registry import KindInfo
from flowyard.store.base import BaseStore

Summarizer = Callable[[Resource], dict[str, Any]]
Row = dict[str, Any]
_EVENT_BATCH = 1000
_LIST_BATCH = 2000
BODY_CACHE_SIZE = 4096
"""Stored bodies kept for list pages (a few KiB each): the pages users actually look at."""


class Index:
    """Summary rows of the objects of ``kinds`` (``[(KindInfo, summarizer)]``). Every row has
    ``id`` (the uid), ``ns`` and ``rname`` (the resource name) plus the summarizer's fields."""

    def __init__(self, store: BaseStore, kinds: list[tuple[KindInfo, Summarizer]]) -> None:
        self.store = store
        self._kinds = {info.key: (info, fn) for info, fn in kinds}
        self._rows: dict[str, dict[str, Row]] = {key: {} for key in self._kinds}
        self._by_name: dict[str, dict[tuple[str, str], str]] = {key: {} for key in self._kinds}
        self._orders: dict[tuple[str, str], Order] = {}
        self._counts: dict[str, dict[str, int]] = {key: {} for key in self._kinds}
        self._bodies: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._rv: int | None = None
        self._lock = threading.RLock()  # RLock: list tests may read the index

    def sync(self) -> None:
        """Catch up with the store (see the module docstring)."""
        with self._lock:
            if self._rv is None:
                self._reload()
            assert self._rv is not None
            if self.store.latest_resource_version() <= self._rv:
                return
            for _ in range(10_000):  # bounded: each round consumes up to _EVENT_BATCH events
                try:
                    events = self.store.events_since(self._rv, limit=_EVENT_BATCH)
                except GoneError:
                    self._reload()
                    continue
                for event in events:
                    if event.kind_key in self._kinds:
                        if event.type == "DELETED":
                            self._remove(event.kind_key, event.object)
                        else:
                            self._put(event.kind_key, event.object)
                    self._rv = event.resource_version
                if len(events) < _EVENT_BATCH:
                    return

    def _reload(self) -> None:
        rv = self.store.latest_resource_version()
        self._orders.clear()  # rebuilt on next use, from the reloaded rows
        self._bodies.clear()
        for key, (info, _) in self._kinds.items():
            self._rows[key] = {}
            self._by_name[key] = {}
            self._counts[key] = {}
            token: str | None = None
            while True:
                page = self.store.list(info, None, limit=_LIST_BATCH, continue_token=token)
                for obj in page.items:
                    self._put(key, obj)
                token = page.continue_token
                if not token:
                    break
        self._rv = rv

    def _put(self, key: str, obj: Resource) -> None:
        md = obj.get("metadata") or {}
        uid = str(md.get("uid") or "")
        row = {
            **self._kinds[key][1](obj),
            "id": uid,
            "ns": md.get("namespace") or "",
            "rname": md.get("name") or "",
            "rv": str(md.get("resourceVersion") or ""),
        }
        old = self._rows[key].get(uid)
        self._rows[key][uid] = row
        if old is None:
            counts = self._counts[key]
            counts[row["ns"]] = counts.get(row["ns"], 0) + 1
        self._by_name[key][(row["ns"], row["rname"])] = uid
        self._reorder(key, old, row)

    def _reorder(self, key: str, old: Row | None, new: Row | None) -> None:
        for (kind, _), order in self._orders.items():
            if kind == key:
                order.replace(old, new)

    def _remove(self, key: str, obj: Resource) -> None:
        md = obj.get("metadata") or {}
        uid = str(md.get("uid") or "")
        row = self._rows[key].pop(uid, None)
        if row is not None:
            self._by_name[key].pop((row["ns"], row["rname"]), None)
            self._counts[key][row["ns"]] -= 1
            self._reorder(key, row, None)
            self._bodies.pop(uid, None)

    # -- reads (call sync() first) ------------------------------------------------------

    def rows(self, info: KindInfo) -> list[Row]:
        with self._lock:
            return list(self._rows[info.key].values())

    def get(self, info: KindInfo, uid: str) -> Row | None:
        with self._lock:
            return self._rows[info.key].get(uid)

    def by_name(self, info: KindInfo, namespace: str, name: str) -> Row | None:
        with self._lock:
            uid = self._by_name[info.key].get((namespace, name))
            return self._rows[info.key].get(uid) if uid else None

    def select(self, info: KindInfo, test: Callable[[Row], bool]) -> list[Row]:
        return [row for row in self.rows(info) if test(row)]

    def ids_of(self, info: KindInfo, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        with self._lock:
            names = self._by_name[info.key]
            return {k: names[k] for k in keys if k in names}

    def page(
        self,
        info: KindInfo,
        field: str,
        desc: bool,
        after: SortKey | None,
        test: Callable[[Row], bool],
        size: int,
    ) -> tuple[list[Row], bool]:
        """The first ``size`` rows passing ``test`` in ``field`` order (descending with
        ``desc``) strictly after the keyset ``after``, and whether more follow."""
        with self._lock:
            rows = self._rows[info.key]
            order = self._orders.get((info.key, field))
            if order is None:
                order = self._orders[(info.key, field)] = Order(field, rows)
            return walk(order, rows, after, desc, test, size)

    def count(self, info: KindInfo, test: Callable[[Row], bool]) -> int:
        """How many rows pass ``test`` (a scan)."""
        with self._lock:
            return sum(1 for row in self._rows[info.key].values() if test(row))

    def count_in(self, info: KindInfo, namespace: str | None) -> int:
        """How many rows there are in ``namespace`` (all namespaces when None); kept, no scan."""
        with self._lock:
            counts = self._counts[info.key]
            return sum(counts.values()) if namespace is None else counts.get(namespace, 0)

    # -- stored bodies of list pages ------------------------------------------------------

    def body(self, row: Row) -> Resource | None:
        """The cached stored object of ``row`` at the row's resourceVersion, or None."""
        with self._lock:
            hit = self._bodies.get(row["id"])
            if hit is None or hit[0] != row["rv"]:
                return None
            self._bodies.move_to_end(row["id"])
        body: Resource = orjson.loads(hit[1])
        return body

    def remember(self, obj: Resource) -> None:
        """Cache a stored object read for a list page (least recently used ones go)."""
        md = obj.get("metadata") or {}
        data = orjson.dumps(obj)
        with self._lock:
            self._bodies[str(md.get("uid") or "")] = (str(md.get("resourceVersion") or ""), data)
            self._bodies.move_to_end(str(md.get("uid") or ""))
            while len(self._bodies) > BODY_CACHE_SIZE:
                self._bodies.popitem(last=False)
