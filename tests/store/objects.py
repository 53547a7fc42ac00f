"""Builders for the objects the store tests write (already valid: the store does not admit)."""

from __future__ import annotations

from typing import Any

from flowyard.resources.meta import Resource


def job(
    name: str | None = None,
    namespace: str | None = None,
    *,
    labels: dict[str, str] | None = None,
    owners: list[Resource] | None = None,
    finalizers: list[str] | None = None,
    generate_name: str | None = None,
    image: str = "busybox:1.36",
) -> Resource:
    """A minimal valid batch/v1 Job."""
    md: dict[str, Any] = {}
    if name:
        md["name"] = name
    if generate_name:
        md["generateName"] = generate_name
    if namespace:
        md["namespace"] = namespace
    if labels:
        md["labels"] = labels
    if finalizers:
        md["finalizers"] = finalizers
    if owners:
        md["ownerReferences"] = [owner_ref(o) for o in owners]
    container = {"name": "main", "image": image, "command": ["sh", "-c", "true"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": md,
        "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}},
    }


def owner_ref(owner: Resource) -> dict[str, Any]:
    md = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": md["name"],
        "uid": md["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def event(
    name: str, involved: Resource, *, reason: str = "Created", namespace: str = "default"
) -> Resource:
    """A v1 Event about ``involved``."""
    md = involved["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": md["name"],
            "namespace": md.get("namespace", ""),
            "uid": md["uid"],
        },
        "type": "Normal",
        "reason": reason,
        "message": f"{reason} {md['name']}",
    }


def namespace(name: str, **metadata: Any) -> Resource:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, **metadata}}
