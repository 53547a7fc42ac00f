"""Starting Python processes as forks of a pre-started interpreter (the local executor's side).

A Python step pays for its interpreter's start-up and its imports every time: for a KFP
lightweight component that is about 0.1 s of a no-op step, most of it ``import kfp``. A spec
that carries a :class:`~flowyard.executors.base.Preload` and runs ``PYTHON -m ...`` or
``PYTHON -c ...`` is instead forked by a *fork server*: a ``PYTHON`` that has imported the
preload's modules once (:mod:`flowyard.executors.forkserver`). The fork is a wrapper with the
shell wrapper's duties (own session and process group, log, working directory, exit file,
signals trapped), so the contract of :mod:`flowyard.executors.base` holds unchanged; the step
is a fork of that wrapper, with exactly the spec's environment.

One server per :class:`ServerKey`: the interpreter path as the spec names it (a venv's
``bin/python`` is not its base interpreter), the modules, and every variable that acts while
the server starts and imports (the preload's ``env`` and the spec's ``PYTHON*`` variables, such
as ``PYTHONPATH``). Servers start on first use and stop with the executor; a server whose
modules cannot be imported is remembered and its specs are spawned normally. Processes that
ask for GPUs are always spawned: GPU libraries are best initialised in a fresh interpreter.

``FLOWYARD_FORK_SERVER=0`` turns forking off (every process is spawned).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowyard.errors import ExecutorError
from flowyard.executors.base import ProcessSpec
from flowyard.executors.spawn import FORK_SERVER_MODULE, scrubbed_env

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0  # importing the modules (a cold disk cache can be slow)
REPLY_TIMEOUT = 10.0  # a fork and a pid write


def enabled() -> bool:
    return os.environ.get("FLOWYARD_FORK_SERVER", "1").strip().lower() not in ("0", "false", "no")


@dataclass(frozen=True)
class ServerKey:
    python: str
    modules: tuple[str, ...]
    env: tuple[tuple[str, str], ...]


def server_key(spec: ProcessSpec, argv: Sequence[str], env: Mapping[str, str]) -> ServerKey | None:
    """The fork server that may start ``spec`` (``argv`` resolved, ``env`` complete), or None
    when it is to be spawned."""
    preload = spec.preload
    if preload is None or not preload.modules or not enabled() or spec.resources.gpu:
        return None
    if len(argv) < 3 or argv[1] not in ("-m", "-c"):
        return None
    if any(env.get(name) != value for name, value in preload.env):
        return None
    startup = {**dict(preload.env), **{k: v for k, v in env.items() if k.startswith("PYTHON")}}
    return ServerKey(argv[0], preload.modules, tuple(sorted(startup.items())))


class ForkServer:
    """One running fork server. Not thread safe (the executor calls it under its lock)."""

    def __init__(self, key: ServerKey, log_path: Path) -> None:
        self.key = key
        self.log_path = log_path
        ours, theirs = socket.socketpair()
        try:
            with open(log_path, "ab") as server_log:
                self._proc = subprocess.Popen(
                    [key.python, "-m", FORK_SERVER_MODULE, str(theirs.fileno()), *key.modules],
                    pass_fds=(theirs.fileno(),),
                    env=scrubbed_env(dict(key.env), None),
                    cwd="/",
                    stdin=subprocess.DEVNULL,
                    stdout=server_log,
                    stderr=server_log,
                    start_new_session=True,  # a Ctrl-C meant for the control plane is not for it
                )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours
        self._reader = ours.makefile("rb")
        try:
            ours.settimeout(START_TIMEOUT)
            ready = self._receive()
            ours.settimeout(REPLY_TIMEOUT)
        except ExecutorError:
            self.close()
            raise
        if not ready.get("ready"):
            self.close()
            raise ExecutorError(f"fork server for {key.python}: {ready.get('error')}")

    def spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str | None,
        log_path: str,
        exit_path: Path,
        pid_path: Path,
    ) -> int:
        """Fork a wrapper running ``argv`` (``[python, -m|-c, ...]``); its pid.

        ExecutorError before the request was sent (the caller may spawn instead); OSError
        after (the request may have been carried out, so starting it another way could start
        it twice)."""
        pid_path.unlink(missing_ok=True)
        request = {
            "op": "spawn",
            "argv": list(argv[1:]),
            "env": dict(env),
            "cwd": cwd,
            "log": log_path,
            "exit_file": str(exit_path),
            "pid_file": str(pid_path),
        }
        self._send(request)
        try:
            reply = self._receive()
        except ExecutorError as exc:
            self.close()
            raise OSError(f"the fork server stopped answering while starting it: {exc}") from exc
        if "error" in reply:  # it started nothing
            raise ExecutorError(f"fork server for {self.key.python}: {reply['error']}")
        return int(reply["pid"])

    def reap(self, pid: int) -> int | None:
        """Release the ended wrapper ``pid``; its exit code, or None if the server is gone."""
        try:
            self._send({"op": "reap", "pid": pid})
            code = self._receive().get("code")
        except ExecutorError:
            return None
        return int(code) if code is not None else None

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None and self._sock.fileno() != -1

    def close(self) -> None:
        """Stop the server. Wrappers it started keep running (they are their own sessions)."""
        self._reader.close()
        self._sock.close()  # the server exits when its socket closes
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError as exc:
            raise ExecutorError(f"fork server for {self.key.python} is gone: {exc}") from exc

    def _receive(self) -> dict[str, Any]:
        try:
            line = self._reader.readline()
        except OSError as exc:
            raise ExecutorError(f"fork server for {self.key.python}: {exc}") from exc
        if not line:
            tail = _tail(self.log_path)
            raise ExecutorError(f"fork server for {self.key.python} exited: {tail}")
        reply: dict[str, Any] = json.loads(line)
        return reply


class ForkServers:
    """The executor's fork servers: at most ``limit`` running, least recently used stopped
    first. Not thread safe (the executor calls it under its lock)."""

    def __init__(self, state_dir: Path, limit: int = 4) -> None:
        self._dir = state_dir
        self._limit = limit
        self._servers: OrderedDict[ServerKey, ForkServer] = OrderedDict()
        self._broken: dict[ServerKey, str] = {}
        self._owner: dict[int, ForkServer] = {}  # wrapper pid -> the server that is its parent

    def start(
        self,
        spec: ProcessSpec,
        argv: Sequence[str],
        env: Mapping[str, str],
        exit_path: Path,
        pid_path: Path,
    ) -> int | None:
        """Start ``spec`` through a fork server; its wrapper's pid, or None when it is to be
        spawned instead (not eligible, or no server could be had). OSError: see
        :meth:`ForkServer.spawn`."""
        key = server_key(spec, argv, env)
        if key is None or key in self._broken:
            return None
        server = self._server(key)
        if server is None:
            return None
        try:
            pid = server.spawn(argv, env, spec.cwd, spec.log_path, exit_path, pid_path)
        except ExecutorError as exc:  # the request never reached it
            log.warning("%s; starting %r without it", exc, spec.name)
            self._drop(key)
            return None
        self._owner[pid] = server
        return pid

    def reap(self, pid: int) -> int | None:
        """Release an ended wrapper; its exit code when its server still has it."""
        server = self._owner.pop(pid, None)
        return server.reap(pid) if server is not None and server.alive else None

    def close(self) -> None:
        for key in list(self._servers):
            self._drop(key)

    def _server(self, key: ServerKey) -> ForkServer | None:
        server = self._servers.get(key)
        if server is not None and not server.alive:
            self._drop(key)
            server = None
        if server is None:
            try:
                server = ForkServer(key, self._dir / "forkserver.log")
            except (OSError, ExecutorError) as exc:
                self._broken[key] = str(exc)
                log.warning("no fork server for %s %s (processes are spawned): %s",
                            key.python, list(key.modules), exc)  # fmt: skip
                return None
            self._servers[key] = server
            while len(self._servers) > self._limit:
                self._drop(next(iter(self._servers)))
        self._servers.move_to_end(key)
        return server

    def _drop(self, key: ServerKey) -> None:
        server = self._servers.pop(key, None)
        if server is None:
            return
        self._owner = {pid: s for pid, s in self._owner.items() if s is not server}
        server.close()


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-limit:].strip() or "(nothing logged)"
