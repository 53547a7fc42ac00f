"""Status conditions as Kubernetes writes them (``type``, ``status``, ``reason``, ``message``,
``lastTransitionTime``; Kubeflow operators also set ``lastUpdateTime``)."""

from __future__ import annotations

from typing import Any

from flowyard.resources.meta import Resource, now_iso


def conditions(obj: Resource) -> list[dict[str, Any]]:
    """The object's ``status.conditions`` list (created empty if missing)."""
    if not isinstance(obj.get("status"), dict):
        obj["status"] = {}
    conds = obj["status"].setdefault("conditions", [])
    assert isinstance(conds, list)
    return conds


def get_condition(obj: Resource, cond_type: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == cond_type:
            return cond
    return None


def is_true(obj: Resource, cond_type: str) -> bool:
    cond = get_condition(obj, cond_type)
    return bool(cond and cond.get("status") == "True")


def set_condition(
    obj: Resource,
    cond_type: str,
    status: bool | str,
    reason: str = "",
    message: str = "",
    *,
    with_update_time: bool = False,
) -> bool:
    """Set one condition in place; return True if anything changed.

    ``lastTransitionTime`` moves only when ``status`` flips, as Kubernetes does.
    """
    value = status if isinstance(status, str) else ("True" if status else "False")
    now = now_iso()
    current = get_condition(obj, cond_type)
    if current is None:
        cond: dict[str, Any] = {
            "type": cond_type,
            "status": value,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now,
        }
        if with_update_time:
            cond["lastUpdateTime"] = now
        conditions(obj).append(cond)
        return True
    changed = (current.get("status"), current.get("reason"), current.get("message")) != (
        value,
        reason,
        message,
    )
    if not changed:
        return False
    if current.get("status") != value:
        current["lastTransitionTime"] = now
    current.update(status=value, reason=reason, message=message)
    if with_update_time:
        current["lastUpdateTime"] = now
    return True
