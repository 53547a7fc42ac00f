"""Model-server replicas of one revision: process specs, launching/stopping, readiness probes.

Replica ``i`` of revision ``R`` is the executor process ``isvc.<ns>.<name>.<R>.<i>`` with its
own free port (label ``serving.flowyard.io/port``), so a restarted control plane adopts it and
finds its port. Readiness: the flowyard model server's ``/flowyard/status`` (``Loaded``; a
``FailedToLoad`` replica stays up and its reason is reported), else the container's
``readinessProbe.httpGet`` path (any answer below 500), else a TCP connect.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from flowyard import config
from flowyard.controllers.base import process_labels
from flowyard.executors.base import BaseExecutor, ProcessSpec, ProcessState, ProcessStatus
from flowyard.serving.kinds import INFERENCESERVICE
from flowyard.serving.plan import expand, passed_env
from flowyard.serving.router import free_port

LABEL_COMPONENT = "component"
LABEL_REVISION = "serving.knative.dev/revision"
LABEL_PORT = "serving.flowyard.io/port"
LABEL_INDEX = "serving.flowyard.io/replica"
_PROBE_TIMEOUT_S = 0.5


@dataclass
class RevisionState:
    """What the probes found for one revision's replicas."""

    ready: list[str] = field(default_factory=list)
    loading: int = 0
    failure: tuple[str, str] | None = None  # (reason, message)
    running: int = 0


def process_name(isvc: dict[str, Any], revision: str, index: int) -> str:
    md = isvc["metadata"]
    return f"isvc.{md['namespace']}.{md['name']}.{revision}.{index}"


def replica_spec(
    isvc: dict[str, Any], component: str, revision: str, index: int, plan: dict[str, Any]
) -> ProcessSpec:
    md = isvc["metadata"]
    port = free_port()
    env = {**passed_env(), **plan["env"], "PORT": str(port)}
    env.setdefault("FLOWYARD_HOME", str(config.home()))
    labels = process_labels(INFERENCESERVICE, isvc)
    labels.update(
        {
            LABEL_COMPONENT: component,
            LABEL_REVISION: revision,
            LABEL_PORT: str(port),
            LABEL_INDEX: str(index),
        }
    )
    log_dir = config.logs_dir() / md["namespace"] / "inferenceservices" / md["name"]
    return ProcessSpec(
        name=process_name(isvc, revision, index),
        argv=[expand(str(a), env) for a in plan["argv"]],
        env=env,
        log_path=str(log_dir / f"{revision}-{index}.log"),
        labels=labels,
    )


def sync_replicas(
    executor: BaseExecutor,
    isvc: dict[str, Any],
    component: str,
    revision: str,
    plan: dict[str, Any],
    procs: list[ProcessStatus],
    desired: int,
) -> RevisionState:
    """Make ``desired`` replicas run (relaunching ended ones) and probe them."""
    state = RevisionState()
    by_index: dict[int, ProcessStatus] = {}
    ended: set[int] = set()  # relaunched on a later pass: a crashing command does not spin
    for proc in procs:
        index = int(proc.labels.get(LABEL_INDEX, "0"))
        if proc.state.finished:
            if proc.state is not ProcessState.KILLED:
                state.failure = ("ReplicaExited", _exit_message(proc))
            executor.forget(proc.name)
            ended.add(index)
        elif index >= desired:
            executor.kill(proc.name, grace_seconds=5.0)
        else:
            by_index[index] = proc
    for index in range(desired):
        if index not in by_index and index not in ended:
            by_index[index] = executor.launch(replica_spec(isvc, component, revision, index, plan))
    for proc in by_index.values():
        state.running += 1
        url = f"http://127.0.0.1:{proc.labels[LABEL_PORT]}"
        verdict, reason = (
            probe(url, plan["probe"])
            if proc.state is ProcessState.RUNNING
            else (
                "loading",
                None,
            )
        )
        if verdict == "ready":
            state.ready.append(url)
        elif verdict == "failed" and reason:
            state.failure = reason
        else:
            state.loading += 1
    state.ready.sort()
    return state


def probe(url: str, kind: str) -> tuple[str, tuple[str, str] | None]:
    """("ready" | "loading" | "failed", failure (reason, message))."""
    if kind == "tcp":
        port = url.rsplit(":", 1)[1]
        try:
            with socket.create_connection(("127.0.0.1", int(port)), _PROBE_TIMEOUT_S):
                return "ready", None
        except OSError:
            return "loading", None
    path = "/flowyard/status" if kind == "flowyard" else kind.removeprefix("http:")
    try:
        response = httpx.get(url + path, timeout=_PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return "loading", None
    if kind != "flowyard":
        return ("ready" if response.status_code < 500 else "loading"), None
    body = response.json()
    if body.get("state") == "Loaded":
        return "ready", None
    if body.get("state") == "FailedToLoad":
        return "failed", (str(body.get("reason") or "ModelLoadFailed"), str(body.get("message")))
    return "loading", None


def _exit_message(proc: ProcessStatus) -> str:
    tail = ""
    if proc.log_path and Path(proc.log_path).exists():
        tail = Path(proc.log_path).read_text(errors="replace")[-600:].strip()
    return f"replica {proc.name} exited with code {proc.exit_code}: {tail}"
