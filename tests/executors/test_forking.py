"""Processes started by the local executor's fork server (flowyard.executors.forking).

The executor contract itself is checked through the fork server by the ``local-forked``
variant of ``test_contract.py``; these tests cover what is particular to forking: that the step
runs as ``python -m``/``-c`` would, that it really is a fork of the preloaded interpreter, and
every way of falling back to a plain spawn.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from flowyard.executors.base import Preload, ProcessSpec, ProcessState, ProcessStatus, Resources
from flowyard.executors.forking import ForkServers
from flowyard.executors.local import LocalExecutor
from tests.executors.helpers import PRELOAD, forked, sh, wait_until

WAIT = 20.0


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    made = LocalExecutor(tmp_path / "state", cpu=4, memory=2**30, gpus=0, grace_seconds=2)
    made.recover()
    yield made
    made.shutdown(kill=True)


def python(
    name: str,
    tmp: Path,
    *args: str,
    preload: Preload | None = PRELOAD,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> ProcessSpec:
    """``python ARGS...`` that the fork server may start."""
    return ProcessSpec(
        name=name,
        argv=[sys.executable, *args],
        log_path=str(tmp / "logs" / f"{name}.log"),
        env=env or {},
        cwd=cwd,
        preload=preload,
    )


def run(executor: LocalExecutor, spec: ProcessSpec) -> tuple[ProcessStatus, str]:
    executor.launch(spec)
    status = executor.wait(spec.name, timeout=WAIT)
    assert status.state.finished, status
    return status, Path(spec.log_path).read_text()


def was_forked(executor: LocalExecutor, name: str) -> bool:
    record = json.loads((executor.state_dir / f"{name}.json").read_text())
    return bool(record["forked"])


def fork_servers() -> list[psutil.Process]:
    """The fork servers this test process started (and that still run)."""
    found = []
    for child in psutil.Process().children():
        try:
            if "forkserver" in " ".join(child.cmdline()) and child.status() != "zombie":
                found.append(child)
        except psutil.Error:  # ended meanwhile
            continue
    return found


MODULE = """
import os, sys
print("argv", sys.argv[1:], "main", __name__, "path0", sys.path[0] == os.getcwd())
print("cwd", os.getcwd())
print("env", sorted(k for k in os.environ if k.startswith("STEP_")), os.environ["STEP_A"])
print("preloaded", "csv" in sys.modules, "flowyard.executors.local" in sys.modules)
print("unflushed at exit", end="")
sys.exit(int(sys.argv[1]))
"""


def test_a_module_runs_as_python_m_would(executor: LocalExecutor, tmp_path: Path) -> None:
    pkg = tmp_path / "work"
    pkg.mkdir()
    (pkg / "stepmod.py").write_text(MODULE)
    env, csv = {"STEP_A": "1"}, Preload(modules=("csv",))
    spec = python("m", tmp_path, "-m", "stepmod", "7", "x y", env=env, cwd=str(pkg), preload=csv)
    status, log = run(executor, spec)
    assert (status.state, status.exit_code) == (ProcessState.FAILED, 7)
    assert was_forked(executor, "m")
    assert "argv ['7', 'x y'] main __main__ path0 True" in log
    assert f"cwd {pkg}" in log
    assert "env ['STEP_A'] 1" in log
    # the preload's modules are there; nothing of the control plane's is
    assert "preloaded True False" in log
    assert log.endswith("unflushed at exit")


def test_code_and_its_failures(executor: LocalExecutor, tmp_path: Path) -> None:
    ok, log = run(executor, python("ok", tmp_path, "-c", "import sys; print(sys.argv)", "a"))
    assert (ok.state, log) == (ProcessState.SUCCEEDED, "['-c', 'a']\n")
    boom, log = run(executor, python("boom", tmp_path, "-c", "raise ValueError('boom')"))
    assert (boom.state, boom.exit_code) == (ProcessState.FAILED, 1)
    assert "ValueError: boom" in log and "Traceback" in log
    text, log = run(executor, python("text", tmp_path, "-c", "raise SystemExit('bye')"))
    assert (text.exit_code, log) == (1, "bye\n")
    # SIGINT ends it the way it ends a fresh interpreter: KeyboardInterrupt, then the signal
    intr, log = run(executor, python("intr", tmp_path, "-c", "import os; os.kill(os.getpid(), 2)"))
    assert intr.exit_code == 128 + 2 and "KeyboardInterrupt" in log
    atexit_code = "import atexit; atexit.register(print, 'atexit ran')"
    _, log = run(executor, python("atexit", tmp_path, "-c", atexit_code))
    assert log == "atexit ran\n"
    for name in ("ok", "boom", "text", "intr", "atexit"):
        assert was_forked(executor, name)


def test_each_step_is_a_fresh_fork(executor: LocalExecutor, tmp_path: Path) -> None:
    """State a step leaves in its interpreter does not reach the next one; the random module
    is reseeded in every fork."""
    code = "import json, random; print(hasattr(json, 'mark'), random.random()); json.mark = 1"
    first = run(executor, python("one", tmp_path, "-c", code))[1]
    second = run(executor, python("two", tmp_path, "-c", code))[1]
    assert first.startswith("False ") and second.startswith("False ")
    assert first != second


def test_servers_are_shared_per_key_and_stop_with_the_executor(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "state", cpu=4, memory=2**30, gpus=0)
    executor.recover()
    try:
        for name in ("a", "b"):
            run(executor, python(name, tmp_path, "-c", "pass"))
        other = Preload(modules=("json", "csv"))
        run(executor, python("c", tmp_path, "-c", "pass", preload=other))
        # a PYTHON* variable acts at start-up, so it needs a server of its own
        run(executor, python("d", tmp_path, "-c", "pass", env={"PYTHONOPTIMIZE": "1"}))
        assert all(was_forked(executor, n) for n in "abcd")
        assert len(fork_servers()) == 3
    finally:
        executor.shutdown()
    wait_until(lambda: fork_servers() == [])


@pytest.mark.parametrize(
    "change",
    [
        {"preload": None},
        {"preload": Preload(modules=("no_such_module_anywhere",))},
        {"preload": Preload(modules=("json",), env=(("NEEDED", "1"),))},  # env differs
        {"resources": Resources(gpu=1)},
        {"argv": [sys.executable, "-S", "-c", "print('ran')"]},
    ],
    ids=["no-preload", "import-fails", "env-differs", "gpu", "other-flags"],
)
def test_falls_back_to_a_plain_spawn(tmp_path: Path, change: dict[str, object]) -> None:
    gpus = 1 if "resources" in change else 0
    executor = LocalExecutor(tmp_path / "state", cpu=4, memory=2**30, gpus=gpus)
    executor.recover()
    try:
        spec = python("p", tmp_path, "-c", "print('ran')")
        for field, value in change.items():
            setattr(spec, field, value)
        for name in ("p", "again"):  # a server that failed is not tried for every process
            spec.name, spec.log_path = name, str(tmp_path / f"{name}.log")
            status, log = run(executor, spec)
            assert (status.state, log) == (ProcessState.SUCCEEDED, "ran\n")
            assert not was_forked(executor, name)
            assert fork_servers() == []
    finally:
        executor.shutdown(kill=True)


def test_turned_off_by_the_environment(
    executor: LocalExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWYARD_FORK_SERVER", "0")
    run(executor, python("p", tmp_path, "-c", "pass"))
    assert not was_forked(executor, "p")


def test_a_dead_server_is_replaced(executor: LocalExecutor, tmp_path: Path) -> None:
    run(executor, python("one", tmp_path, "-c", "pass"))
    (first,) = fork_servers()
    first.kill()
    first.wait(5)
    status, log = run(executor, python("two", tmp_path, "-c", "print('ran')"))
    assert (status.state, log) == (ProcessState.SUCCEEDED, "ran\n")
    assert was_forked(executor, "two")


def test_a_server_killed_while_its_step_runs(executor: LocalExecutor, tmp_path: Path) -> None:
    """The step is its own session: it outlives its server, and its exit code still arrives
    (through the exit file)."""
    go = tmp_path / "go"
    wait_go = f"import os, sys, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.02)\n"
    executor.launch(python("long", tmp_path, "-c", wait_go + "sys.exit(6)"))
    wait_until(lambda: executor.status("long").state is ProcessState.RUNNING)
    for server in fork_servers():
        server.kill()
    go.touch()
    status = executor.wait("long", timeout=WAIT)
    assert (status.state, status.exit_code) == (ProcessState.FAILED, 6)


def test_a_threaded_preload_is_refused(tmp_path: Path) -> None:
    """Forking a process with threads is unsafe: a module that starts one is not preloaded."""
    (tmp_path / "threaded_mod.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True)"
        ".start()\n"
    )
    pools = ForkServers(tmp_path)
    spec = python("t", tmp_path, "-c", "pass", preload=Preload(modules=("threaded_mod",)))
    env = {"PATH": os.defpath, "PYTHONPATH": str(tmp_path)}
    try:
        assert pools.start(spec, spec.argv, env, tmp_path / "t.exit", tmp_path / "t.pid") is None
    finally:
        pools.close()
    assert not (tmp_path / "t.pid").exists()


def test_shell_specs_in_the_contract_variant_really_fork(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    """The contract suite's ``local-forked`` variant checks what it claims to."""
    status, log = run(executor, forked(sh("s", "echo $$; exit 3", tmp_path)))
    assert (status.state, status.exit_code) == (ProcessState.FAILED, 3)
    assert was_forked(executor, "s")
    assert int(log) != status.pid  # the shell is the step, a child of the forked wrapper
