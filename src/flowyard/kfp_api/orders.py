"""Rows kept sorted by one field, so a list page is a binary search plus a short walk.

A KFP list sorts by one field (ties broken by id) and continues after a keyset position. Sorting
every row on every call costs O(n log n) per page; an :class:`Order` is kept sorted as rows
change (a bisect and a list insert or delete: a memmove of pointers, microseconds at 10,000
rows), so a page costs O(log n) plus the rows it walks past.

Sort keys are ``(value is not None, value or 0, id)``: None sorts first, and a field never mixes
strings and numbers (the summarizers guarantee it).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

Row = Mapping[str, Any]
SortKey = tuple[bool, Any, str]
R = TypeVar("R", bound=Row)


def sort_key(field: str, row: Row) -> SortKey:
    """The position of ``row`` in an order by ``field``."""
    value = row.get(field)
    return (value is not None, value if value is not None else 0, str(row["id"]))


class Order:
    """The rows of one kind sorted by one field; holds keys only, rows are looked up by id."""

    def __init__(self, field: str, rows: Mapping[str, Row]) -> None:
        self.field = field
        self._keys: list[SortKey] = sorted(sort_key(field, r) for r in rows.values())

    def replace(self, old: Row | None, new: Row | None) -> None:
        """Move a row from its old position to its new one (either may be None)."""
        old_key = sort_key(self.field, old) if old is not None else None
        new_key = sort_key(self.field, new) if new is not None else None
        if old_key == new_key:
            return
        if old_key is not None:
            i = bisect_left(self._keys, old_key)
            if i < len(self._keys) and self._keys[i] == old_key:
                del self._keys[i]
        if new_key is not None:
            insort(self._keys, new_key)

    def ids_from(self, after: SortKey | None, desc: bool) -> Iterator[str]:
        """Ids in order (descending with ``desc``) strictly after the keyset ``after``."""
        keys = self._keys
        if not desc:
            start = 0 if after is None else bisect_right(keys, after)
            for i in range(start, len(keys)):
                yield keys[i][2]
        else:
            stop = len(keys) if after is None else bisect_left(keys, after)
            for i in range(stop - 1, -1, -1):
                yield keys[i][2]


def walk(
    order: Order,
    rows: Mapping[str, R],
    after: SortKey | None,
    desc: bool,
    test: Callable[[R], bool],
    size: int,
) -> tuple[list[R], bool]:
    """(the first ``size`` rows after ``after`` that pass ``test``, whether more follow)."""
    page: list[R] = []
    for ident in order.ids_from(after, desc):
        row = rows.get(ident)
        if row is None or not test(row):
            continue
        if len(page) == size:
            return page, True
        page.append(row)
    return page, False
