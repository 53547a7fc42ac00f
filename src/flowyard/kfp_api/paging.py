"""Sorting and page tokens for KFP list calls.

``sort_by`` is ``"<key>"`` or ``"<key> desc"`` (KFP's syntax); ties are broken by the object's
id so the order is total. A page token is opaque to clients: base64 of the sort, the filter and
the (sort value, id) of the last item served. The next page continues strictly after that
position (keyset paging), so objects inserted between calls never shift, repeat or skip the
items of later pages. As in KFP, a token carries its own sort and filter; the request's
``sort_by``/``filter`` are ignored when a token is given.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowyard.errors import BadRequestError
from flowyard.kfp_api.orders import SortKey, sort_key

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
Row = Mapping[str, Any]


@dataclass(frozen=True)
class ListRequest:
    """What a list call asks for, once the page token (if any) is unpacked."""

    sort_field: str
    desc: bool
    filter: str
    page_size: int
    after: tuple[Any, str] | None


def parse_sort(sort_by: str | None, keys: Mapping[str, str], default: str) -> tuple[str, bool]:
    """(row field, descending) for a ``sort_by`` string; BadRequestError on an unknown key."""
    text = (sort_by or "").strip()
    if not text:
        return default, False
    parts = text.split()
    if len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
        raise BadRequestError(
            f'invalid sort_by {sort_by!r}: use "<field>" or "<field> desc", e.g. "created_at desc"'
        )
    if parts[0] not in keys:
        raise BadRequestError(
            f"invalid sort_by {sort_by!r}: cannot sort on {parts[0]!r}; sortable fields: "
            + ", ".join(sorted(keys))
        )
    return keys[parts[0]], len(parts) == 2 and parts[1].lower() == "desc"


def encode_token(req: ListRequest, last: Row) -> str:
    raw = json.dumps(
        {
            "s": req.sort_field,
            "d": req.desc,
            "f": req.filter,
            "v": last.get(req.sort_field),
            "id": last["id"],
        },
        separators=(",", ":"),
    ).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def request_from(
    page_token: str | None,
    page_size: int | str | None,
    sort_by: str | None,
    filter_text: str | None,
    keys: Mapping[str, str],
    default_sort: str,
) -> ListRequest:
    """The list request: from the token when there is one, else from sort_by/filter."""
    try:
        size = int(page_size or 0) or DEFAULT_PAGE_SIZE
    except ValueError:
        raise BadRequestError(f"invalid page_size {page_size!r}: must be an integer") from None
    if size < 0:
        raise BadRequestError(f"invalid page_size {page_size}: must be >= 0")
    size = min(size, MAX_PAGE_SIZE)
    if not page_token:
        field, desc = parse_sort(sort_by, keys, default_sort)
        return ListRequest(field, desc, filter_text or "", size, None)
    try:
        padded = page_token + "=" * (-len(page_token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if data["s"] not in {*keys.values(), default_sort}:
            raise ValueError("unknown sort field")
        after = (data["v"], str(data["id"]))
        return ListRequest(str(data["s"]), bool(data["d"]), str(data["f"]), size, after)
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, binascii.Error):
        raise BadRequestError(
            f"invalid page_token {page_token[:40]!r}: pass back next_page_token of the previous "
            "response unchanged, or start again without one"
        ) from None


def after_key(req: ListRequest) -> SortKey | None:
    """The keyset position a page continues after (None for a first page)."""
    if req.after is None:
        return None
    value, ident = req.after
    return sort_key(req.sort_field, {req.sort_field: value, "id": ident})
