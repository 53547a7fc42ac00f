"""``continue`` tokens: opaque to clients, the (namespace, name) key of the last item served.

Lists scan the (kind, namespace, name) index from just after that key, so a page never repeats
or skips an object that existed when the first page was read, whatever is inserted meanwhile.
"""

from __future__ import annotations

import base64
import binascii

import orjson

from flowyard.errors import BadRequestError

_VERSION = 1


def encode_continue(namespace: str, name: str) -> str:
    raw = orjson.dumps({"v": _VERSION, "ns": namespace, "name": name})
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_continue(token: str) -> tuple[str, str]:
    """The key encoded in ``token``; BadRequestError if it is not one this store issued."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeEncodeError, binascii.Error, orjson.JSONDecodeError):
        data = None
    if (
        not isinstance(data, dict)
        or data.get("v") != _VERSION
        or not isinstance(data.get("ns"), str)
        or not isinstance(data.get("name"), str)
    ):
        raise BadRequestError(
            f"invalid continue token {token[:40]!r}: pass back the metadata.continue value of "
            "the previous page unchanged, or start again without one"
        )
    return data["ns"], data["name"]
