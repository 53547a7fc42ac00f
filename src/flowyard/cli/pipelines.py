"""``flowyard run PIPELINE`` and the task view of ``describe run``.

``run`` compiles a ``.py`` file locally with kfp (or reads an IR / Argo YAML), submits a Run
(or a Workflow), then shows a live view of its tasks until it ends. Exit code 0 when the run
SUCCEEDED (an Argo workflow: Succeeded), 1 otherwise, after naming the failed tasks and the
command that shows their logs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from flowyard.client import Client
from flowyard.client.pipelines import FINAL_STATES, WORKFLOW_FINAL, load_package, run_resource

_STYLE = {
    "Succeeded": "green",
    "SUCCEEDED": "green",
    "Cached": "cyan",
    "Running": "yellow",
    "RUNNING": "yellow",
    "Failed": "red",
    "FAILED": "red",
    "Error": "red",
    "Skipped": "dim",
    "Omitted": "dim",
    "Canceled": "magenta",
    "CANCELED": "magenta",
    "Pending": "dim",
}
_POLL = 0.25


def parse_params(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="-p")
        out[key.strip()] = value
    return out


def run(
    pipeline_file: Annotated[Path, typer.Argument(help="pipeline.py, IR .yaml/.json or Argo YAML")],
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Which @dsl.pipeline of a .py file.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Parameter key=value.")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Disable caching.")] = False,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    pipeline_root: Annotated[
        str | None, typer.Option("--pipeline-root", help="Artifact root URI (dir or s3://).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Run name.")] = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Submit and exit.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 24 * 3600,
) -> None:
    """Run a KFP pipeline (.py, IR YAML) or a KFP v1 / Argo Workflow, with a live view."""
    out = Console(soft_wrap=True)
    docs = load_package(pipeline_file, pipeline)
    obj = run_resource(
        docs,
        parse_params(param or []),
        run_name=name,
        namespace=namespace,
        pipeline_root=pipeline_root,
        enable_caching=False if no_cache else None,
    )
    with Client() as client:
        created = client.create(obj)
        kind = "run" if created["kind"] == "Run" else "workflow"
        run_name = created["metadata"]["name"]
        ns = created["metadata"].get("namespace") or "default"
        out.print(f"{kind}/{run_name} created", highlight=False)
        if detach:
            return
        final = _follow(client, kind, run_name, ns, out, timeout)
    raise typer.Exit(_report(final, kind, run_name, ns, out))


def _follow(
    client: Client, kind: str, name: str, ns: str, out: Console, timeout: float
) -> dict[str, Any]:
    plural = "runs.pipelines.kubeflow.org" if kind == "run" else "workflows"
    deadline = time.monotonic() + timeout
    obj = client.get(plural, name, ns)
    with Live(_view(obj), console=out, refresh_per_second=8, transient=False) as live:
        while not _done(obj):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s; the run goes on: {kind}/{name}")
            time.sleep(_POLL)
            obj = client.get(plural, name, ns)
            live.update(_view(obj))
    if not out.is_terminal:
        out.line()  # Live leaves its last frame without a newline when output is not a terminal
    return obj


def _done(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if obj["kind"] == "Workflow":
        return status.get("phase") in WORKFLOW_FINAL
    return status.get("state") in FINAL_STATES


def task_rows(obj: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(task, state, duration, detail) for every task of a Run or Workflow, tree-ordered."""
    now = time.time()
    rows = []
    if obj["kind"] == "Workflow":
        for node in _workflow_nodes(obj):
            rows.append(
                (
                    "  " * node.get("depth", 0) + node.get("displayName", node.get("name", "")),
                    node.get("phase", ""),
                    _span(node.get("startedAtTs"), node.get("finishedAtTs"), now),
                    node.get("message", ""),
                )
            )
        return rows
    tasks = ((obj.get("status") or {}).get("engine") or {}).get("tasks") or {}
    for tid in sorted(t for t in tasks if t):
        node = tasks[tid]
        depth = tid.count("/")
        detail = node.get("message") or node.get("reason") or ""
        if node.get("attempt", 0) > 1:
            detail = f"attempt {node['attempt']} {detail}".strip()
        rows.append(
            (
                "  " * depth + node["name"],
                node["state"],
                _span(node.get("startedAt"), node.get("finishedAt"), now),
                detail[:80],
            )
        )
    return rows


def _workflow_nodes(obj: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = (obj.get("status") or {}).get("nodes") or {}
    return sorted(nodes.values(), key=lambda n: (n.get("startedAt") or "~", n.get("id", "")))


def _span(start: float | None, end: float | None, now: float) -> str:
    if not start:
        return ""
    return f"{(end or now) - start:.1f}s"


def _view(obj: dict[str, Any]) -> Group:
    status = obj.get("status") or {}
    state = status.get("state") or status.get("phase") or "PENDING"
    head = Text.assemble(
        (f"{obj['kind'].lower()}/{obj['metadata']['name']} ", "bold"),
        (state, _STYLE.get(state, "")),
    )
    grid = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("TASK", "STATE", "DURATION", "DETAIL"):
        grid.add_column(col)
    for task, st, dur, detail in task_rows(obj):
        grid.add_row(task, Text(st, _STYLE.get(st, "")), dur, detail)
    return Group(head, grid)


def _report(obj: dict[str, Any], kind: str, name: str, ns: str, out: Console) -> int:
    status = obj.get("status") or {}
    ns_flag = f" -n {ns}" if ns != "default" else ""
    if kind == "workflow":
        ok = status.get("phase") == "Succeeded"
        failed = [
            n
            for n in (status.get("nodes") or {}).values()
            if n.get("phase") in ("Failed", "Error") and n.get("type") == "Pod"
        ]
        containers = [(n.get("displayName", ""), n.get("logName", "")) for n in failed]
    else:
        ok = status.get("state") == "SUCCEEDED"
        tasks = (status.get("engine") or {}).get("tasks") or {}
        containers = [
            (tid, Path(tasks[tid].get("logPath") or tid).stem)
            for tid in status.get("failedTasks") or []
            if tid in tasks
        ]
    state = status.get("state") or status.get("phase")
    if ok:
        out.print(f"{kind}/{name} {state}", style="green", highlight=False)
        for key, value in (status.get("outputs") or {}).items():
            if value:
                out.print(f"  output {key}: {value}", highlight=False, markup=False)
        return 0
    message = (status.get("error") or {}).get("message") or status.get("message") or ""
    out.print(f"{kind}/{name} {state}: {message}", style="red", highlight=False, markup=False)
    for task, container in containers:
        out.print(
            f"  failed task {task}: see `flowyard logs {kind}/{name} -c {container}{ns_flag}`",
            highlight=False,
            markup=False,
        )
    return 1


def describe_tasks(console: Console, obj: dict[str, Any]) -> None:
    """The task table ``describe run`` / ``describe workflow`` prints after the object."""
    rows = task_rows(obj)
    if not rows:
        return
    console.print("[bold]Tasks:[/bold]")
    grid = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("Task", "State", "Duration", "Detail"):
        grid.add_column(col)
    for row in rows:
        grid.add_row(*row)
    console.print(grid)
    if obj["kind"] == "Run":
        _describe_io(console, obj)


def _describe_io(console: Console, obj: dict[str, Any]) -> None:
    details = ((obj.get("status") or {}).get("runDetails") or {}).get("taskDetails") or []
    for d in details:
        if d.get("kind") not in ("container", "importer"):
            continue
        ins = (d.get("inputs") or {}).get("parameters") or {}
        outs = (d.get("outputs") or {}).get("parameters") or {}
        arts = {
            k: [a.get("uri") for a in v]
            for k, v in ((d.get("outputs") or {}).get("artifacts") or {}).items()
        }
        console.print(
            f"  {d['taskId']}: inputs {ins} -> outputs {outs}"
            + (f" artifacts {arts}" if arts else ""),
            highlight=False,
            markup=False,
        )


def describe(console: Console, obj: dict[str, Any], events: list[dict[str, Any]]) -> None:
    """``describe`` of a Run/Workflow: the object without the bulky IR and engine state, then
    the task table with inputs, outputs and timings."""
    from flowyard.cli import printing

    shown = dict(obj)
    spec = dict(obj.get("spec") or {})
    if isinstance(spec.get("pipelineSpec"), dict):
        info = spec["pipelineSpec"].get("pipelineInfo") or {}
        spec["pipelineSpec"] = f"<IR of pipeline {info.get('name', '?')!r}>"
    if obj["kind"] == "Workflow":
        spec["templates"] = [t.get("name") for t in spec.get("templates") or []]
    status = {
        k: v
        for k, v in (obj.get("status") or {}).items()
        if k not in ("engine", "runDetails", "nodes", "pipelineSpec")
    }
    shown["spec"], shown["status"] = spec, status
    printing.describe(console, shown, events)
    describe_tasks(console, obj)
