"""Small helpers shared by the executor tests."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from flowyard.executors.base import Preload, ProcessSpec, Resources


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


def gone(pid: int) -> bool:
    """True if ``pid`` no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for_file(path: Path, seconds: float = 30.0) -> str:
    """A shell snippet that waits (bounded) until ``path`` exists."""
    rounds = int(seconds / 0.02)
    return f'i=0; while [ ! -e "{path}" ] && [ $i -lt {rounds} ]; do sleep 0.02; i=$((i+1)); done'


def sh(
    name: str,
    script: str,
    tmp: Path,
    *,
    cpu: float = 0.0,
    gpu: int = 0,
    labels: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    deadline: float | None = None,
) -> ProcessSpec:
    """A spec running ``script`` with ``/bin/sh -c``, logging to ``tmp/logs/<name>.log``."""
    return ProcessSpec(
        name=name,
        argv=["sh", "-c", script],
        log_path=str(tmp / "logs" / f"{name}.log"),
        env=env or {},
        cwd=cwd,
        resources=Resources(cpu=cpu, gpu=gpu),
        labels=labels or {},
        deadline_seconds=deadline,
    )


def read_log(tmp: Path, name: str) -> str:
    path = tmp / "logs" / f"{name}.log"
    return path.read_text() if path.exists() else ""


# A Python program that becomes the shell: run by the fork server, it checks the whole wrapper
# (session, log, cwd, signals, exit file) with the same shell scripts as the spawned processes.
EXEC_SHELL = "import os, sys; os.execv('/bin/sh', ['sh', *sys.argv[1:]])"
PRELOAD = Preload(modules=("json",))


def forked(spec: ProcessSpec) -> ProcessSpec:
    """``spec`` (a ``sh`` command) as a Python process that the fork server may start."""
    if spec.argv[0] != "sh":
        return spec
    return dataclasses.replace(
        spec, argv=[sys.executable, "-c", EXEC_SHELL, *spec.argv[1:]], preload=PRELOAD
    )
