"""A real flowyard server in a subprocess, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from flowyard.client import Client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """``flowyard up`` on a free port with its own FLOWYARD_HOME."""

    home: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(FLOWYARD_HOME=str(self.home), FLOWYARD_URL=self.url, **self.extra_env)
        env.pop("FLOWYARD_TOKEN", None)
        return env

    def start(self, timeout: float = 30.0) -> RunningServer:
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / "server.out").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flowyard.cli.main", "up", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready in {timeout}s: {self.output()}")

    def output(self) -> str:
        path = self.home / "server.out"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    @property
    def token(self) -> str:
        import json

        return str(json.loads((self.home / "credentials").read_text())["token"])

    def client(self) -> Client:
        return Client(self.url, self.token)

    def cli(
        self, *args: str, stdin: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``flowyard ARGS...`` against this server (wide terminal, no colour)."""
        return subprocess.run(
            [sys.executable, "-m", "flowyard.cli.main", *args],
            env=dict(self.env, COLUMNS="200"),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(5)
