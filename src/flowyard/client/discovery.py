"""What kinds the server serves, learnt from its discovery endpoints (as kubectl does), so the
client knows every kind a server component registered without importing the component."""

from __future__ import annotations

from typing import Any

from flowyard.resources.registry import KindInfo, KindRegistry, PrinterColumn


def registry_from_discovery(resource_lists: list[dict[str, Any]]) -> KindRegistry:
    """Build a registry from ``APIResourceList`` documents (``/api/v1``, ``/apis/g/v``)."""
    registry = KindRegistry()
    for doc in resource_lists:
        group, _, version = str(doc.get("groupVersion", "")).rpartition("/")
        for res in doc.get("resources") or []:
            if "/" in str(res.get("name", "")):
                continue  # subresources
            columns = tuple(
                PrinterColumn(
                    c["name"], c["jsonPath"], c.get("type", "string"), int(c.get("priority", 0))
                )
                for c in res.get("columns") or []
            )
            registry.register(
                KindInfo(
                    group=group,
                    version=version,
                    kind=res["kind"],
                    plural=res["name"],
                    short_names=tuple(res.get("shortNames") or ()),
                    namespaced=bool(res.get("namespaced", True)),
                    columns=columns,
                )
            )
    return registry
