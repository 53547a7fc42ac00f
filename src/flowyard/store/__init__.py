"""The resource store (DESIGN §4): :class:`BaseStore` and its SQL backend."""

from flowyard.store.base import BaseStore, ListResult, WatchEvent

__all__ = ["BaseStore", "ListResult", "WatchEvent"]
