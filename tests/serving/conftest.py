"""Real model-server subprocesses on free loopback ports, and tiny models trained here."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

MODELS_DIR = Path(__file__).parent / "models"
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One ``python -m flowyard.serving.server`` process; ``url`` is its HTTP base URL."""

    def __init__(
        self, args: list[str], home: Path, grpc: bool = False, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.grpc_port = free_port() if grpc else 0
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / f"server-{self.port}.log"
        argv = [
            sys.executable,
            "-m",
            "flowyard.serving.server",
            "--http-port",
            str(self.port),
            *args,
        ]
        if grpc:
            argv += ["--grpc-port", str(self.grpc_port)]
        env = {**os.environ, "FLOWYARD_HOME": str(home), "HOME": str(home), **(env or {})}
        self._log_handle = self.log.open("wb")
        self.proc = subprocess.Popen(
            argv, stdout=self._log_handle, stderr=subprocess.STDOUT, env=env
        )
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    def wait_live(self) -> Server:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.output()}")
            try:
                if self.client.get("/v2/health/live").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not live in {START_TIMEOUT_S}s: {self.output()}")

    def wait_loaded(self) -> Server:
        """Wait until loading ends (Loaded or FailedToLoad)."""
        self.wait_live()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            state = self.client.get("/flowyard/status").json()["state"]
            if state != "Loading":
                return self
            time.sleep(0.1)
        raise TimeoutError(f"model still loading after {START_TIMEOUT_S}s: {self.output()}")

    def output(self) -> str:
        self._log_handle.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log_handle.close()


@pytest.fixture(scope="session")
def server_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving-home")


@pytest.fixture(scope="module")
def start_server(server_home: Path) -> Iterator[object]:
    """``start_server(args, grpc=False)`` -> a started Server, stopped at the end of the
    module (call ``wait_live``/``wait_loaded`` on it)."""
    servers: list[Server] = []

    def start(
        args: list[str],
        grpc: bool = False,
        home: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Server:
        server = Server(args, home or server_home, grpc=grpc, env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An iris LogisticRegression saved as model.joblib."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    path = tmp_path_factory.mktemp("iris")
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), path / "model.joblib")
    return path


@pytest.fixture(scope="session")
def iris_data() -> tuple[object, object]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    return x, y
