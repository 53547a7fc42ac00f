"""Assembling the control plane: store, executor, controllers, auth and the HTTP server.

``flowyard up`` calls :func:`serve`. One process per ``FLOWYARD_HOME``: a lock file
(``FLOWYARD_HOME/server.lock``) stops a second server from sharing the same database and
executor state.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import uvicorn

from flowyard import config
from flowyard.api.app import create_app
from flowyard.api.auth import AdminAuthorizer, TokenAuthenticator, User
from flowyard.controllers.base import Controller
from flowyard.controllers.manager import ControllerManager
from flowyard.errors import UnavailableError
from flowyard.executors.base import BaseExecutor
from flowyard.executors.local import LocalExecutor
from flowyard.jobs import JobController
from flowyard.jobs import register as register_jobs
from flowyard.pipelines import controllers as pipelines
from flowyard.store import open_store
from flowyard.store.base import BaseStore
from flowyard.training import controllers as training

log = logging.getLogger("flowyard")


def controllers() -> list[type[Controller]]:
    """Every controller the platform runs; components register their admission hooks here."""
    register_jobs()
    training.register_kinds()
    pipelines.register_kinds()
    from flowyard.kfp_api import controllers as kfp_controllers
    from flowyard.serving.control import controllers as serving_controllers
    from flowyard.tuning.controllers import controllers as tuning_controllers

    # Last: the Trial controller owns every kind registered before it (trial run objects).
    return [
        JobController,
        *training.CONTROLLERS,
        *pipelines.CONTROLLERS,
        *kfp_controllers(),
        *serving_controllers(),
        *tuning_controllers(),
    ]


def start_components(store: BaseStore, executor: BaseExecutor) -> None:
    """Startup work of components that needs the store and executor (before serving)."""
    training.install(store, executor)
    from flowyard.serving.control import install as install_serving

    install_serving(store)


@dataclass
class Platform:
    store: BaseStore
    executor: BaseExecutor
    manager: ControllerManager
    app: Any


def build(home: Path | None = None) -> Platform:
    """The whole control plane for ``FLOWYARD_HOME`` (not started)."""
    home = home or config.home()
    token = config.ensure_admin_token()
    store = open_store()
    executor = LocalExecutor(state_dir=home / "executor")
    start_components(store, executor)
    manager = ControllerManager(store, executor, controllers())

    def stop() -> None:
        manager.stop()
        executor.shutdown(kill=False)
        store.close()

    app = create_app(
        store,
        executor,
        TokenAuthenticator({token: User("admin", ("system:masters",), is_admin=True)}),
        AdminAuthorizer(),
        on_start=manager.start,
        on_stop=stop,
    )
    return Platform(store, executor, manager, app)


def _lock_home(home: Path) -> IO[str]:
    handle = (home / "server.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        raise UnavailableError(
            f"another flowyard server (pid {owner}) is already running with FLOWYARD_HOME={home}; "
            "stop it first, or set FLOWYARD_HOME to another directory"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UnavailableError(
                f"cannot listen on {host}:{port} ({exc.strerror}); is flowyard already running? "
                "Use --port to pick another port"
            ) from None


def serve(host: str = config.DEFAULT_HOST, port: int = config.DEFAULT_PORT) -> None:
    """Run the control plane in the foreground until interrupted."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    home = config.home()
    lock = _lock_home(home)
    _check_port(host, port)
    platform = build(home)
    log.info("flowyard %s serving on http://%s:%s (FLOWYARD_HOME=%s)", "up", host, port, home)
    try:
        uvicorn.Server(
            uvicorn.Config(
                platform.app,
                host=host,
                port=port,
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=3,
            )
        ).run()
    finally:
        lock.close()
