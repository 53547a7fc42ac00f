"""The fork server: a Python interpreter that has imported some modules and forks processes.

Started by the local executor (:mod:`flowyard.executors.forking`) as::

    PYTHON -m flowyard.executors.forkserver FD MODULE...

It imports each ``MODULE``, reports ``{"ready": true}`` (or the import error) on the Unix
socket ``FD``, then answers one JSON request per line:

* ``{"op": "spawn", "argv": ["-m" | "-c", TARGET, ARG...], "env": {...}, "cwd": ...,
  "log": ..., "exit_file": ..., "pid_file": ...}`` -> ``{"pid": N}``. The child is a
  *wrapper* with the same duties as the shell wrapper of :mod:`flowyard.executors.spawn`: it
  starts a new session (so its pid is the process group id), writes its pid to ``pid_file``,
  takes stdin from ``/dev/null`` and appends stdout and stderr to ``log``, changes to ``cwd``
  (exit 126 if it cannot), ignores HUP/INT/TERM, forks the step, waits for it and writes its
  exit status (``128 + signal`` for a signal death) to ``exit_file`` before exiting with it.
  The step gets the default signal dispositions, exactly ``env`` as its environment, and runs
  ``TARGET`` as ``python -m TARGET`` or ``python -c TARGET`` would, as the ``__main__`` of an
  interpreter whose start-up and imports are already done.
* ``{"op": "reap", "pid": N}`` -> ``{"code": C}``: wait for the ended wrapper ``N`` (the server
  is its parent and keeps it as a zombie until asked, so the executor can open a pidfd and
  signal its group without racing pid reuse); ``C`` is null if it has not ended.

A request that fails without starting anything is answered ``{"error": MESSAGE}``.

It exits when the socket closes. Only the standard library is imported here, so the steps see
the modules they asked for and nothing of flowyard's.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import runpy
import signal
import socket
import sys
import threading
import types
from typing import Any

_WRAPPER_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)


def _ignore(signum: int, frame: object) -> None:
    """A handler that does nothing: like the shell's ``trap :``, unlike SIG_IGN it is reset in
    a child that execs."""


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _redirect_stdio(log_path: str) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def _wrapper(request: dict[str, Any]) -> list[str]:
    """Body of the forked wrapper. Returns (in the step process only) the step's argv; the
    wrapper itself never returns."""
    code = 127
    try:
        os.setsid()
        _write(request["pid_file"], f"{os.getpid()}\n")
        _redirect_stdio(request["log"])
        if request.get("cwd"):
            try:
                os.chdir(request["cwd"])
            except OSError as exc:
                os.write(2, f"flowyard: cannot change to {request['cwd']}: {exc}\n".encode())
                code = 126
                raise
        for signum in _WRAPPER_SIGNALS:
            signal.signal(signum, _ignore)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.environ.clear()
            os.environ.update(request["env"])
            argv: list[str] = request["argv"]
            return argv
        code = _exit_code(os.waitpid(pid, 0)[1])  # EINTR from the ignored signals is retried
    except BaseException:  # whatever failed, the wrapper records an exit status
        pass
    try:
        _write(request["exit_file"], f"{code}\n")
    finally:
        os._exit(code)


def _serve(sock: socket.socket) -> list[str] | None:
    """Answer requests until the socket closes. Returns only in a forked step: its argv."""
    reader = sock.makefile("rb")
    for line in reader:
        request = json.loads(line)
        if request["op"] == "spawn":
            try:
                pid = os.fork()
            except OSError as exc:  # EAGAIN, ENOMEM: nothing was started
                reply: dict[str, Any] = {"error": f"fork failed: {exc}"}
            else:
                if pid == 0:
                    reader.close()
                    sock.close()
                    return _wrapper(request)
                reply = {"pid": pid}
        elif request["op"] == "reap":
            try:
                got, status = os.waitpid(int(request["pid"]), os.WNOHANG)
            except ChildProcessError:
                got, status = 0, 0
            reply = {"code": _exit_code(status) if got else None}
        else:
            reply = {"error": f"unknown request {request['op']!r}"}
        sock.sendall(json.dumps(reply).encode() + b"\n")
    return None


def _preload(modules: list[str]) -> str:
    """Import ``modules``; an error message, or "" when all were imported."""
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as exc:  # reported to the executor, which spawns instead
            return f"importing {name!r} failed: {type(exc).__name__}: {exc}"
    if threading.active_count() != 1:  # forking a threaded process is not safe
        return f"importing {modules} started threads; such modules cannot be preloaded"
    # What is loaded now stays for good: keep the collector (in every step, and when it ends)
    # from walking it, which would also copy each page it touches out of the shared memory.
    gc.freeze()
    return ""


def run_step(argv: list[str]) -> None:
    """Run ``argv`` (``["-m", MODULE, ARG...]`` or ``["-c", CODE, ARG...]``) as ``python``
    would run it as its main program; exceptions and ``SystemExit`` end the interpreter as
    they would there."""
    flag, target, *args = argv
    if flag == "-m":
        sys.path[0] = os.getcwd()
        sys.argv = [target, *args]  # runpy replaces [0] with the module's file
        # A preloaded module runs afresh as __main__, as it would in a new interpreter.
        sys.modules.pop(target, None)
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.path[0] = ""
        sys.argv = ["-c", *args]
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        exec(compile(target, "<string>", "exec"), main.__dict__)


def main() -> list[str] | None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    error = _preload(sys.argv[2:])
    sock.sendall(json.dumps({"ready": not error, "error": error}).encode() + b"\n")
    if error:
        return None
    return _serve(sock)


if __name__ == "__main__":
    step = main()
    if step is not None:
        run_step(step)
