"""The resource store (DESIGN §4): :class:`BaseStore` and its SQL backend."""

from __future__ import annotations

from flowyard import config
from flowyard.store.base import BaseStore, ListResult, WatchEvent
from flowyard.store.sql import DEFAULT_EVENT_LOG_SIZE, SqlStore


def open_store(
    url: str | None = None,
    *,
    event_log_size: int = DEFAULT_EVENT_LOG_SIZE,
    poll_interval: float = 0.25,
) -> BaseStore:
    """Open (and migrate) the store at ``url``, default :func:`flowyard.config.database_url`
    (``FLOWYARD_DATABASE_URL``, else SQLite in ``FLOWYARD_HOME``). See :class:`SqlStore` for
    the options."""
    return SqlStore(
        url or config.database_url(), event_log_size=event_log_size, poll_interval=poll_interval
    )


__all__ = ["BaseStore", "ListResult", "SqlStore", "WatchEvent", "open_store"]
