"""Helpers shared by the reliability tests: a server with a known-good Job, the CLI, HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import RunningServer

JOBS = "/apis/batch/v1/namespaces/default/jobs"


def job(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox", "command": command}],
                }
            },
            **spec,
        },
    }


def http(server: RunningServer, timeout: float = 60) -> httpx.Client:
    """A fresh connection per use: a request that makes the server drop its connection must
    not poison the next one."""
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=timeout,
    )


def run_cli(
    server: RunningServer, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m flowyard.cli.main ARGS`` against ``server`` (token from its home)."""
    return subprocess.run(
        [sys.executable, "-m", "flowyard.cli.main", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).parent,
    )


def server_errors_logged(server: RunningServer) -> list[str]:
    """The 'unhandled error' lines of the server log (each is a 500 it answered)."""
    log = server.home / "server.out"
    if not log.exists():
        return []
    return [
        line for line in log.read_text(errors="replace").splitlines() if "unhandled error" in line
    ]
