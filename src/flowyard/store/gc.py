"""Cascading deletion through ``metadata.ownerReferences``, as Kubernetes' garbage collector
does it, but inside the deleting transaction (so watchers see the owner's DELETED event followed
directly by its dependents' events).

* ``Background``/``Foreground``: every dependent whose owners are all gone is deleted, and its
  own dependents after it. A dependent with finalizers is only marked for deletion
  (``deletionTimestamp``); it is removed, and its dependents collected, once an update clears
  its finalizers. A dependent that still has another live owner keeps living; only the
  reference to the deleted owner is removed.
* ``Orphan``: the reference to the owner is removed from every dependent.
"""

from __future__ import annotations

from collections import deque

from flowyard.resources.meta import Resource, now_iso
from flowyard.store.base import Propagation
from flowyard.store.txn import StoredObject, WriteTx, owner_uids


def mark_deleting(body: Resource) -> None:
    """Set the metadata a delete leaves on an object that still has finalizers."""
    md = body["metadata"]
    md["deletionTimestamp"] = now_iso()
    md["deletionGracePeriodSeconds"] = 0


def strip_owner(body: Resource, owner_uid: str) -> Resource:
    md = body["metadata"]
    refs = [
        ref
        for ref in md.get("ownerReferences") or []
        if not (isinstance(ref, dict) and ref.get("uid") == owner_uid)
    ]
    if refs:
        md["ownerReferences"] = refs
    else:
        md.pop("ownerReferences", None)
    return body


def orphan_dependents(tx: WriteTx, owner_uid: str) -> None:
    for dependent in tx.dependents(owner_uid):
        tx.replace(dependent, strip_owner(dependent.body, owner_uid))


def collect_dependents(tx: WriteTx, owner_uid: str, propagation: Propagation) -> None:
    """Apply ``propagation`` to the dependents of the just-removed object ``owner_uid``."""
    if propagation == "Orphan":
        orphan_dependents(tx, owner_uid)
        return
    # Each uid enters the queue once, right after its row is removed, so this ends even when
    # ownerReferences form a cycle.
    queue = deque([owner_uid])
    while queue:
        owner = queue.popleft()
        for dependent in tx.dependents(owner):
            if _collect(tx, dependent, owner):
                queue.append(dependent.uid)


def _collect(tx: WriteTx, dependent: StoredObject, owner_uid: str) -> bool:
    """Delete (True), mark or detach one dependent of the removed ``owner_uid``."""
    if tx.existing_uids(owner_uids(dependent.body) - {owner_uid}):
        tx.replace(dependent, strip_owner(dependent.body, owner_uid))
        return False
    md = dependent.body["metadata"]
    if md.get("finalizers"):
        if not md.get("deletionTimestamp"):
            mark_deleting(dependent.body)
            tx.replace(dependent, dependent.body)
        return False
    tx.remove(dependent, dependent.body)
    return True
