"""Helpers for InferenceService end-to-end tests: a control plane with a gs:// storage map, the
CLI, and waiting on status."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.server import RunningServer

# The upstream reference data sits next to the checkout (../shared/reference).
EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "kserve" / "examples"


def cli(server: RunningServer, *args: str, stdin: str | None = None) -> str:
    proc = server.cli(*args, stdin=stdin)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def get(server: RunningServer, name: str) -> dict[str, Any]:
    with server.client() as client:
        return client.get("InferenceService", name, "default")


def condition(isvc: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (isvc.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def wait_for(server: RunningServer, name: str, check: Any, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    isvc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        isvc = get(server, name)
        if check(isvc):
            return isvc
        time.sleep(0.2)
    raise AssertionError(
        f"timed out; last status: {yaml.safe_dump(isvc.get('status'))}\n{server.output()}"
    )


def wait_ready(server: RunningServer, name: str, timeout: float = 90.0) -> dict[str, Any]:
    return wait_for(server, name, lambda o: condition(o, "Ready").get("status") == "True", timeout)


def predict(url: str, model: str, rows: list[list[float]], **kw: Any) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/models/{model}:predict", json={"instances": rows}, timeout=60, **kw
    )


def stop_replicas(home: Path) -> None:
    """Stop the replicas a test control plane left running (the control plane keeps them on
    shutdown so that a restart adopts them). Only processes under this test's home are touched."""
    import psutil

    marker = str(home)
    victims = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if marker in " ".join(proc.info["cmdline"] or []) and "/executor/isvc." in " ".join(
                proc.info["cmdline"] or []
            ):
                victims.append(proc)
                victims.extend(proc.children(recursive=True))
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    psutil.wait_procs(victims, timeout=10)
