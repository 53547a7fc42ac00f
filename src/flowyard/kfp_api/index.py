"""An in-memory index of the KFP-visible objects, kept current from the store's event log.

KFP addresses everything by id and lists with arbitrary filters and sorts; the store lists in
(namespace, name) order and parses every body it scans. The index keeps one small summary row
per object (id, namespace, name and the filterable fields), so get-by-id is a dict lookup and a
list filters and sorts thousands of rows in memory, then reads only the page's objects.

Consistency: :meth:`Index.sync` runs before every use. It applies the store events after the
last one seen (all of them, so a caller sees its own writes), and re-reads everything when the
event log has been compacted past that point (GoneError) or on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from flowyard.errors import GoneError
from flowyard.resources.meta import Resource
from flowyard.resources.registry import KindInfo
from flowyard.store.base import BaseStore

Summarizer = Callable[[Resource], dict[str, Any]]
Row = dict[str, Any]
_EVENT_BATCH = 1000
_LIST_BATCH = 500


class Index:
    """Summary rows of the objects of ``kinds`` (``[(KindInfo, summarizer)]``). Every row has
    ``id`` (the uid), ``ns`` and ``rname`` (the resource name) plus the summarizer's fields."""

    def __init__(self, store: BaseStore, kinds: list[tuple[KindInfo, Summarizer]]) -> None:
        self.store = store
        self._kinds = {info.key: (info, fn) for info, fn in kinds}
        self._rows: dict[str, dict[str, Row]] = {key: {} for key in self._kinds}
        self._by_name: dict[str, dict[tuple[str, str], str]] = {key: {} for key in self._kinds}
        self._rv: int | None = None
        self._lock = threading.Lock()

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
        for key, (info, _) in self._kinds.items():
            self._rows[key] = {}
            self._by_name[key] = {}
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
        }
        self._rows[key][uid] = row
        self._by_name[key][(row["ns"], row["rname"])] = uid

    def _remove(self, key: str, obj: Resource) -> None:
        md = obj.get("metadata") or {}
        uid = str(md.get("uid") or "")
        row = self._rows[key].pop(uid, None)
        if row is not None:
            self._by_name[key].pop((row["ns"], row["rname"]), None)

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
