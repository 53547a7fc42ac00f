"""Model-server replicas of one revision: process specs, launching/stopping, readiness probes.

Replica ``i`` of revision ``R`` is the executor process ``isvc.<ns>.<name>.<R>.<i>`` with its
own free port (label ``serving.flowyard.io/port``), so a restarted control plane adopts it and
finds its port. Readiness: the flowyard model server's ``/flowyard/status`` (``Loaded``; a
``FailedToLoad`` replica stays up and its reason is reported), else the container's
``readinessProbe.httpGet`` path (any answer below 500), else a TCP connect.
"""

from __future__ import annotations

import os
import socket
import time
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
LABEL_GRPC_PORT = "serving.flowyard.io/grpc-port"
_PROBE_TIMEOUT_S = 0.5
_BACKOFF_BASE_S = 1.0
MAX_BACKOFF_ENV = "FLOWYARD_SERVING_MAX_BACKOFF_SECONDS"


@dataclass
class RevisionState:
    """What the probes found for one revision's replicas."""

    ready: list[str] = field(default_factory=list)
    grpc: list[str] = field(default_factory=list)  # host:port of ready replicas serving V2 gRPC
    loading: int = 0
    failure: tuple[str, str] | None = None  # (reason, message)
    running: int = 0
    retry_in: float | None = None  # seconds until a crashed replica may start again
    exit_code: int | None = None


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
    if any("$(GRPC_PORT)" in str(a) for a in plan["argv"]):
        env["GRPC_PORT"] = str(free_port())
        labels[LABEL_GRPC_PORT] = env["GRPC_PORT"]
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


def backoff_seconds(restarts: int) -> float:
    """Crash-loop back-off before restart number ``restarts``: 1 s, 2 s, 4 s, ... capped at
    ``FLOWYARD_SERVING_MAX_BACKOFF_SECONDS`` (default 60), as the kubelet's CrashLoopBackOff
    doubles from 10 s to 5 min."""
    cap = float(os.environ.get(MAX_BACKOFF_ENV, "60"))
    return float(min(_BACKOFF_BASE_S * 2 ** max(restarts - 1, 0), cap))


def sync_replicas(
    executor: BaseExecutor,
    isvc: dict[str, Any],
    component: str,
    revision: str,
    plan: dict[str, Any],
    procs: list[ProcessStatus],
    desired: int,
    crashes: dict[str, Any] | None = None,
) -> RevisionState:
    """Make ``desired`` replicas run and probe them. A replica that exited on its own is
    restarted after :func:`backoff_seconds`; ``crashes`` (kept by the caller in ``status``, so
    the back-off survives a control-plane restart) maps ``"<revision>/<index>"`` to
    ``{restarts, exitCode, nextRestart}`` and is cleared once the replica is ready again."""
    crashes = {} if crashes is None else crashes
    state = RevisionState()
    by_index: dict[int, ProcessStatus] = {}
    for proc in procs:
        index = int(proc.labels.get(LABEL_INDEX, "0"))
        if proc.state.finished:
            if proc.state is not ProcessState.KILLED:
                _record_crash(crashes, f"{revision}/{index}", proc)
            executor.forget(proc.name)
        elif index >= desired:
            executor.kill(proc.name, grace_seconds=5.0)
        else:
            by_index[index] = proc
    now = time.time()
    for index in range(desired):
        crash = crashes.get(f"{revision}/{index}")
        if crash is not None:
            _report_crash(state, crash, now)
        if index in by_index:
            continue
        if crash is not None and crash["nextRestart"] > now:
            continue  # backing off
        by_index[index] = executor.launch(replica_spec(isvc, component, revision, index, plan))
    for index, proc in by_index.items():
        if _probe_into(state, proc, plan["probe"]) == "ready":
            crashes.pop(f"{revision}/{index}", None)
            if not any(k.startswith(f"{revision}/") for k in crashes):
                state.failure, state.retry_in, state.exit_code = None, None, None
    state.ready.sort()
    return state


def _record_crash(crashes: dict[str, Any], key: str, proc: ProcessStatus) -> None:
    crash = crashes.setdefault(key, {"restarts": 0})
    crash["restarts"] = int(crash["restarts"]) + 1
    crash["exitCode"] = proc.exit_code
    crash["nextRestart"] = time.time() + backoff_seconds(int(crash["restarts"]))
    crash["message"] = _exit_message(proc)


def _report_crash(state: RevisionState, crash: dict[str, Any], now: float) -> None:
    wait = max(float(crash["nextRestart"]) - now, 0.0)
    state.retry_in = wait if state.retry_in is None else min(state.retry_in, wait)
    state.exit_code = crash.get("exitCode")
    state.failure = (
        "CrashLoopBackOff",
        f"back-off {backoff_seconds(int(crash['restarts'])):g}s restarting failed replica "
        f"(restarts: {crash['restarts']}, next in {wait:.1f}s): {crash.get('message', '')}",
    )


def _probe_into(state: RevisionState, proc: ProcessStatus, kind: str) -> str:
    state.running += 1
    url = f"http://127.0.0.1:{proc.labels[LABEL_PORT]}"
    if proc.state is ProcessState.RUNNING:
        verdict, reason = probe(url, kind)
    else:
        verdict, reason = "loading", None
    if verdict == "ready":
        state.ready.append(url)
        if proc.labels.get(LABEL_GRPC_PORT):
            state.grpc.append(f"127.0.0.1:{proc.labels[LABEL_GRPC_PORT]}")
    elif verdict == "failed" and reason:
        state.failure = reason
    else:
        state.loading += 1
    return verdict


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
        tail = Path(proc.log_path).read_text(errors="replace")[-400:].strip()
    return f"replica {proc.name} exited with code {proc.exit_code}: {tail}"
