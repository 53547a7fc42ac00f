"""Rendering objects for ``get`` and ``describe`` the way kubectl does."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from flowyard.client.jsonpath import find
from flowyard.resources.registry import KindInfo, PrinterColumn


def age(timestamp: str | None, now: float | None = None) -> str:
    """``2024-01-01T00:00:00Z`` -> ``5m`` / ``3h`` / ``2d`` (kubectl's short form)."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return timestamp
    return short_duration((now or time.time()) - then)


def short_duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes}m" if minutes >= 10 else f"{minutes}m{seconds % 60}s"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def cell(obj: dict[str, Any], column: PrinterColumn) -> str:
    values = find(obj, column.json_path)
    if column.type == "date":
        return age(values[0] if values else None)
    if column.type == "duration":
        if not values:
            return ""
        status = obj.get("status") or {}
        end = status.get("completionTime") or status.get("finishTime") or status.get("finishedAt")
        stop = _ts(end) if end else time.time()
        return short_duration(stop - _ts(values[0]))
    if column.name == "Status" and obj.get("kind") == "Job":
        return _job_status(obj)
    if column.name == "Completions" and obj.get("kind") == "Job":
        done = values[0] if values else 0
        return f"{done}/{(obj.get('spec') or {}).get('completions', 1)}"
    return ",".join(str(v) for v in values if v not in (None, ""))


def _job_status(obj: dict[str, Any]) -> str:
    """kubectl's Job status: Complete, Failed, Suspended or Running."""
    true = {
        c.get("type")
        for c in (obj.get("status") or {}).get("conditions") or []
        if c.get("status") == "True"
    }
    return next((t for t in ("Complete", "Failed", "Suspended") if t in true), "Running")


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp()


def table(
    info: KindInfo, items: list[dict[str, Any]], *, wide: bool, all_namespaces: bool
) -> Table:
    columns = [c for c in info.columns if wide or c.priority == 0]
    if not any(c.json_path == ".metadata.creationTimestamp" for c in columns):
        columns.append(PrinterColumn("Age", ".metadata.creationTimestamp", "date"))
    grid = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    if all_namespaces and info.namespaced:
        grid.add_column("NAMESPACE")
    grid.add_column("NAME")
    for col in columns:
        grid.add_column(col.name.upper())
    for obj in items:
        md = obj.get("metadata") or {}
        row = [md.get("namespace", "")] if all_namespaces and info.namespaced else []
        row.append(md.get("name", ""))
        row.extend(cell(obj, c) for c in columns)
        grid.add_row(*row)
    return grid


def to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False)


def describe(console: Console, obj: dict[str, Any], events: list[dict[str, Any]]) -> None:
    md = obj.get("metadata") or {}
    pairs = [
        ("Name", md.get("name")),
        ("Namespace", md.get("namespace")),
        ("Labels", _kv(md.get("labels"))),
        ("Annotations", _kv(md.get("annotations"))),
        ("API Version", obj.get("apiVersion")),
        ("Kind", obj.get("kind")),
        ("Created", md.get("creationTimestamp")),
        ("UID", md.get("uid")),
    ]
    if md.get("deletionTimestamp"):
        pairs.append(("Deleting since", md["deletionTimestamp"]))
    for key, value in pairs:
        if value not in (None, ""):
            console.print(f"[bold]{key + ':':<14}[/bold] {value}", highlight=False)
    for section in ("spec", "status"):
        body = {k: v for k, v in (obj.get(section) or {}).items() if k != "conditions"}
        if body:
            console.print(f"[bold]{section.capitalize()}:[/bold]")
            console.print(_indent(to_yaml(body)), highlight=False, markup=False)
    conditions = (obj.get("status") or {}).get("conditions") or []
    if conditions:
        console.print("[bold]Conditions:[/bold]")
        grid = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("Type", "Status", "Reason", "Message", "Last Transition"):
            grid.add_column(name)
        for c in conditions:
            grid.add_row(
                str(c.get("type", "")),
                str(c.get("status", "")),
                str(c.get("reason", "")),
                str(c.get("message", "")),
                age(c.get("lastTransitionTime")),
            )
        console.print(grid)
    console.print("[bold]Events:[/bold]" + ("" if events else " <none>"))
    if events:
        grid = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("Type", "Reason", "Age", "From", "Message"):
            grid.add_column(name)
        for e in sorted(events, key=lambda e: str(e.get("lastTimestamp") or "")):
            count = int(e.get("count") or 1)
            when = age(e.get("lastTimestamp")) + (f" (x{count})" if count > 1 else "")
            grid.add_row(
                str(e.get("type", "")),
                str(e.get("reason", "")),
                when,
                str((e.get("source") or {}).get("component", "")),
                str(e.get("message", "")),
            )
        console.print(grid)


def _kv(mapping: dict[str, str] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (mapping or {}).items()) or "<none>"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip().splitlines())
