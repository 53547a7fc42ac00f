"""JSON merge patch (RFC 7386) and the three-way patch behind ``apply``."""

from __future__ import annotations

from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
"""The annotation ``apply`` keeps the applied manifest in (the same one kubectl uses)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch (``null`` deletes a key; lists are replaced)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def three_way_patch(last_applied: Any, desired: Any) -> Any:
    """The merge patch that turns what was last applied into ``desired``: fields the user
    removed from the manifest become ``null`` (deleted); fields set by the server (defaults,
    status) and never in a manifest are left alone."""
    if not isinstance(desired, dict) or not isinstance(last_applied, dict):
        return desired
    patch: dict[str, Any] = {}
    for key in last_applied:
        if key not in desired:
            patch[key] = None
    for key, value in desired.items():
        patch[key] = three_way_patch(last_applied.get(key), value)
    return patch
