"""Starting, signalling and recognising the local executor's processes.

Each process is started with ``posix_spawn`` (no Python shim, no fork of the control plane) as

    /bin/sh -c WRAPPER sh EXIT_FILE CWD ARGV...

in a new session (so a new process group whose id is the wrapper's pid), stdin from
``/dev/null``, stdout and stderr appended to the log file. The wrapper changes to ``CWD``, runs
``ARGV`` as a child, then writes the child's exit status to ``EXIT_FILE`` and exits with it, so
the status is known even if the control plane was down when the process ended. The wrapper
traps TERM/INT/HUP (a trap, unlike an ignored signal, is reset in the child), so when the group
is signalled it outlives the command and still records its status (``128 + signal``).

``ARGV[0]`` without a ``/`` is resolved against the process's ``PATH`` first, so the shell never
mistakes it for one of its builtins (``exec``, ``exit``, ...), as a container runtime would not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

SHELL = "/bin/sh"
WRAPPER = (
    'f=$1 d=$2; shift 2; if [ -n "$d" ]; then cd -- "$d" || { echo 126 >"$f"; exit 126; }; fi; '
    'trap : HUP INT TERM; "$@"; c=$?; echo "$c" >"$f"; exit "$c"'
)
FORK_SERVER_MODULE = "flowyard.executors.forkserver"
_PASSED = ("PATH", "HOME", "USER", "LANG", "TMPDIR", "TZ", "VIRTUAL_ENV")
_RESET_SIGNALS = tuple(
    s for s in (getattr(signal, n, None) for n in ("SIGPIPE", "SIGXFSZ", "SIGXFZ")) if s
)
# How far a live process's create time may drift from the recorded one (psutil derives it from
# the boot time, which the kernel reports to whole seconds and may re-derive after clock steps).
CREATE_TIME_TOLERANCE = 1.0

log = logging.getLogger(__name__)


def scrubbed_env(extra: Mapping[str, str], cuda_devices: str | None) -> dict[str, str]:
    """The environment of a process: a few variables of ours, then the spec's, then the GPUs.

    Nothing else of the control plane's environment (tokens, database URLs) is passed on.
    """
    env = {k: v for k, v in os.environ.items() if k in _PASSED or k.startswith("LC_")}
    env.setdefault("PATH", os.defpath)
    env.update(extra)
    if cuda_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_devices
    return env


def resolve_argv(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``argv`` with a bare program name replaced by its path; FileNotFoundError if not found."""
    program = argv[0]
    if "/" in program:
        return list(argv)
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(f"executable {program!r} not found in PATH={env.get('PATH', '')}")
    return [found, *argv[1:]]


def prepare_start(cwd: str | None, log_path: str, exit_path: Path) -> None:
    """What every start does first: the log can be appended to (its directory is created),
    ``cwd`` is checked (a FileNotFoundError naming it), a previous exit file is gone. An
    OSError names what failed."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    if cwd and not os.path.isdir(cwd):
        raise FileNotFoundError(f"working directory {cwd!r} does not exist")
    exit_path.unlink(missing_ok=True)


def spawn(
    argv: Sequence[str], env: Mapping[str, str], cwd: str | None, log_path: str, exit_path: Path
) -> int:
    """Start the wrapped process; return its pid (which is also its process group id).

    ``argv[0]`` is resolved already (:func:`resolve_argv`) and :func:`prepare_start` done.
    Raises OSError (with a message naming what failed) if it cannot be started.
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    full = [SHELL, "-c", WRAPPER, "sh", str(exit_path), cwd or "", *argv]
    return os.posix_spawn(
        SHELL,
        full,
        dict(env),
        file_actions=actions,
        setsid=True,
        setsigmask=(),
        setsigdef=_RESET_SIGNALS,
    )


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to every process of the group; a group that is gone already is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def exit_code_from_wait_status(status: int) -> int:
    """``128 + signal`` for a signal death, else the exit code."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def identify(pid: int, created: float | None, exit_path: Path, *, forked: bool = False) -> str:
    """What ``pid`` is now: ``"running"`` (still the wrapper we started), ``"ended"`` (our
    wrapper, ended but not yet reaped) or ``"other"`` (gone, or an unrelated program that got
    the same pid).

    Checks the create time, the process group (the wrapper leads its own) and, while it runs,
    that its command line carries our exit file (a ``forked`` wrapper: the fork server's
    module), so a reused pid is never taken for ours.
    """
    if created is None:
        return "other"
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if abs(proc.create_time() - created) > CREATE_TIME_TOLERANCE:
                return "other"
            if os.getpgid(pid) != pid:
                return "other"
            if proc.status() == psutil.STATUS_ZOMBIE:
                return "ended"
            cmdline = proc.cmdline()
    except (psutil.Error, OSError):
        return "other"
    marker = FORK_SERVER_MODULE if forked else str(exit_path)
    return "running" if marker in cmdline[:6] else "other"


def may_signal_group(
    pid: int, created: float | None, exit_path: Path, *, forked: bool = False
) -> bool:
    """Whether process group ``pid`` can only be the one our ended wrapper led.

    True while the wrapper (or a zombie of it) is there, or when no process has that pid: a
    process group id cannot be handed out as a new pid while members of the group live, so a
    group ``pid`` is then our wrapper's leftovers or empty. False when another program has taken
    the pid (our group is empty then, and its number may now be that program's group).
    """
    if identify(pid, created, exit_path, forked=forked) != "other":
        return True
    return not psutil.pid_exists(pid)


def running_wrappers() -> dict[str, tuple[int, float]]:
    """Exit file -> (pid, create time) of every running wrapper on the machine (one scan of the
    process table; used only for records whose start was interrupted by a crash)."""
    found: dict[str, tuple[int, float]] = {}
    for proc in psutil.process_iter(["cmdline", "create_time"]):
        cmdline = proc.info.get("cmdline") or []
        if len(cmdline) > 4 and cmdline[0] == SHELL and cmdline[2] == WRAPPER:
            found[cmdline[4]] = (proc.pid, float(proc.info["create_time"]))
    return found


def reap_if_child(pid: int) -> int | None:
    """Reap ``pid`` if it is our child and has ended; its exit code, else None."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return exit_code_from_wait_status(status) if got == pid else None


def describe_exit(code: int) -> str:
    if code > 128:
        try:
            return f"exited with code {code} (signal {signal.Signals(code - 128).name})"
        except ValueError:
            pass
    return f"exited with code {code}"


def append_log(path: str, message: str) -> None:
    """Put a start failure where the user looks first: the process's log."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            handle.write(f"flowyard: {message}\n")
    except OSError:
        log.warning("could not write to log %s: %s", path, message)
