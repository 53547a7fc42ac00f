"""Revisions and traffic of one component, as KServe (Knative) reports them.

A component's revisions are kept in ``status.flowyard.<component>.revisions`` (name, plan hash,
plan, whether it was ever ready). A plan that differs from the latest revision's creates the next
revision ``<isvc>-<component>-NNNNN``. Traffic:

* the latest revision not ready yet: everything stays on ``latestRolledoutRevision``;
* ready, no ``canaryTrafficPercent`` (or 100): it takes 100 %, becomes
  ``latestRolledoutRevision`` and the one before becomes ``previousRolledoutRevision``
  (promotion);
* ready with ``canaryTrafficPercent: N`` and an older rolled-out revision: N % to the latest
  (tag ``latest``), 100-N % to the rolled-out one (tag ``prev``); N = 0 is a rollback.
"""

from __future__ import annotations

from typing import Any

KEEP_REVISIONS = 4


def record_revision(state: dict[str, Any], isvc_name: str, component: str, plan: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Add a revision for ``plan`` when it differs from the latest; return the latest's record."""
    revisions: list[dict[str, Any]] = state.setdefault("revisions", [])
    if revisions and revisions[-1]["hash"] == plan["hash"]:
        return revisions[-1]
    counter = int(state.get("counter", 0)) + 1
    state["counter"] = counter
    record = {
        "name": f"{isvc_name}-{component}-{counter:05d}",
        "hash": plan["hash"],
        "plan": plan,
        "ready": False,
    }
    revisions.append(record)
    keep = {state.get("rolled"), state.get("previous")}
    while len(revisions) > KEEP_REVISIONS:
        victim = next((r for r in revisions[:-1] if r["name"] not in keep), None)
        if victim is None:
            break
        revisions.remove(victim)
    return record


def compute_traffic(
    state: dict[str, Any], canary: int | None, tag_url: Any = None
) -> list[dict[str, Any]]:
    """Update ``state['rolled'|'previous']`` and return the ``traffic`` list.

    ``tag_url(tag)`` gives the URL of a tag (only with tag routing on)."""
    latest = state["revisions"][-1]
    rolled = state.get("rolled")
    if not latest["ready"]:
        return [_entry(rolled, 100, False, None, tag_url)] if rolled else []
    in_canary = canary is not None and canary < 100 and rolled and rolled != latest["name"]
    if not in_canary:
        if rolled != latest["name"]:
            if rolled:
                state["previous"] = rolled
            state["rolled"] = latest["name"]
        traffic = [_entry(latest["name"], 100, True, "latest" if tag_url else None, tag_url)]
        if tag_url and state.get("previous"):
            traffic.append(_entry(state["previous"], 0, False, "prev", tag_url))
        return traffic
    state["previous"] = rolled
    pct = int(canary or 0)
    return [
        _entry(latest["name"], pct, True, "latest", tag_url),
        _entry(rolled, 100 - pct, False, "prev", tag_url),
    ]


def _entry(
    revision: str | None, percent: int, latest: bool, tag: str | None, tag_url: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {"revisionName": revision, "percent": percent, "latestRevision": latest}
    if tag:
        entry["tag"] = tag
        if tag_url:
            entry["url"] = tag_url(tag)
    return entry


def active_revisions(state: dict[str, Any], traffic: list[dict[str, Any]]) -> list[str]:
    """Revisions that must keep replicas: the latest and every one in ``traffic``."""
    names = [state["revisions"][-1]["name"]]
    for entry in traffic:
        if entry["revisionName"] not in names:
            names.append(entry["revisionName"])
    return names


def revision(state: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((r for r in state.get("revisions", []) if r["name"] == name), None)
