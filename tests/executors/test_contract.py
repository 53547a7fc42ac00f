"""The executor contract (flowyard.executors.base), run against every executor.

To add an executor, add one line to ``EXECUTOR_FACTORIES``: a function taking the test's
temporary directory and the capacity to offer (``cpu``, ``gpus``, ``max_processes``), returning
a fresh executor. Tests use only what the contract promises.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowyard.errors import ConflictError, InsufficientResourcesError, NotFoundError
from flowyard.executors.base import (
    BaseExecutor,
    ProcessSpec,
    ProcessState,
    ProcessStatus,
    Resources,
)
from flowyard.executors.local import LocalExecutor
from tests.executors.helpers import forked, gone, read_log, sh, wait_for_file, wait_until

Factory = Callable[..., BaseExecutor]


def local(tmp: Path, **capacity: Any) -> BaseExecutor:
    return LocalExecutor(tmp / "executor-state", grace_seconds=2.0, **capacity)


def local_polling(tmp: Path, **capacity: Any) -> BaseExecutor:
    """The local executor's fallback for kernels without pidfds."""
    return LocalExecutor(tmp / "executor-state", grace_seconds=2.0, use_pidfd=False, **capacity)


class ForkingLocalExecutor(LocalExecutor):
    """The local executor with every ``sh`` spec of these tests turned into a Python process
    that its fork server starts (and that execs the shell), so the contract is checked through
    the forked wrapper too."""

    def launch(self, spec: ProcessSpec) -> ProcessStatus:
        return super().launch(forked(spec))

    def launch_gang(self, specs: list[ProcessSpec]) -> list[ProcessStatus]:
        return super().launch_gang([forked(s) for s in specs])


def local_forked(tmp: Path, **capacity: Any) -> BaseExecutor:
    return ForkingLocalExecutor(tmp / "executor-state", grace_seconds=2.0, **capacity)


EXECUTOR_FACTORIES = [
    pytest.param(local, id="local"),
    pytest.param(local_polling, id="local-polling"),
    pytest.param(local_forked, id="local-forked"),
]

WAIT = 20.0  # generous bound for one process to finish on a loaded machine


@pytest.fixture(params=EXECUTOR_FACTORIES)
def make_executor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    made: list[BaseExecutor] = []

    def make(**capacity: Any) -> BaseExecutor:
        capacity.setdefault("cpu", 4)
        capacity.setdefault("memory", 8 * 2**30)
        capacity.setdefault("gpus", 0)
        capacity.setdefault("max_processes", 32)
        factory: Factory = request.param
        executor = factory(tmp_path, **capacity)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.shutdown(kill=True)


@pytest.fixture
def executor(make_executor: Factory) -> BaseExecutor:
    return make_executor()


def run(executor: BaseExecutor, spec: ProcessSpec) -> ProcessStatus:
    executor.launch(spec)
    status = executor.wait(spec.name, timeout=WAIT)
    assert status.state.finished, status
    return status


def test_exit_codes(executor: BaseExecutor, tmp_path: Path) -> None:
    ok = run(executor, sh("ok", "exit 0", tmp_path))
    assert (ok.state, ok.exit_code) == (ProcessState.SUCCEEDED, 0)
    bad = run(executor, sh("bad", "exit 3", tmp_path))
    assert (bad.state, bad.exit_code) == (ProcessState.FAILED, 3)
    assert bad.finished_at is not None and bad.started_at is not None
    assert bad.started_at <= bad.finished_at


def test_signal_death_is_128_plus_signal(executor: BaseExecutor, tmp_path: Path) -> None:
    status = run(executor, sh("sig", "kill -KILL $$", tmp_path))
    assert (status.state, status.exit_code) == (ProcessState.FAILED, 128 + 9)


def test_environment_is_scrubbed(
    executor: BaseExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWYARD_TOKEN", "server-secret")
    monkeypatch.setenv("FLOWYARD_DATABASE_URL", "postgresql://user:pw@db/flowyard")
    monkeypatch.setenv("SOME_OTHER_VAR", "leak")
    monkeypatch.setenv("LC_TIME", "C")
    run(executor, sh("env", "env", tmp_path, env={"MY_PARAM": "a b=c"}))
    seen = dict(
        line.split("=", 1) for line in read_log(tmp_path, "env").splitlines() if "=" in line
    )
    assert seen["MY_PARAM"] == "a b=c"
    assert seen["HOME"] == os.environ["HOME"]
    assert seen["LC_TIME"] == "C"
    assert "PATH" in seen
    for secret in ("FLOWYARD_TOKEN", "FLOWYARD_DATABASE_URL", "SOME_OTHER_VAR"):
        assert secret not in seen


def test_spec_env_may_pass_a_token_explicitly(executor: BaseExecutor, tmp_path: Path) -> None:
    run(executor, sh("tok", 'echo "t=$FLOWYARD_TOKEN"', tmp_path, env={"FLOWYARD_TOKEN": "x1"}))
    assert "t=x1" in read_log(tmp_path, "tok")


def test_cwd(executor: BaseExecutor, tmp_path: Path) -> None:
    work = tmp_path / "work dir"
    work.mkdir()
    run(executor, sh("cwd", "pwd -P", tmp_path, cwd=str(work)))
    assert read_log(tmp_path, "cwd").strip() == str(work.resolve())


def test_logs_capture_stdout_and_stderr_appended(executor: BaseExecutor, tmp_path: Path) -> None:
    log = tmp_path / "deep" / "er" / "shared.log"
    for name in ("first", "second"):
        spec = ProcessSpec(
            name=name, argv=["sh", "-c", f"echo {name}-out; echo {name}-err >&2"], log_path=str(log)
        )
        assert run(executor, spec).log_path == str(log)
    lines = log.read_text().splitlines()
    assert lines == ["first-out", "first-err", "second-out", "second-err"]


def test_unknown_program_fails(executor: BaseExecutor, tmp_path: Path) -> None:
    spec = ProcessSpec(name="nope", argv=["no-such-program-xyz"], log_path=str(tmp_path / "n.log"))
    executor.launch(spec)
    assert executor.wait("nope", timeout=WAIT).state is ProcessState.FAILED


def test_a_log_that_cannot_be_written_fails_the_start(
    executor: BaseExecutor, tmp_path: Path
) -> None:
    spec = sh("nolog", "echo never", tmp_path)
    Path(spec.log_path).mkdir(parents=True)  # a directory where the log file should be
    status = run(executor, spec)
    assert (status.state, status.reason) == (ProcessState.FAILED, "StartError")
    assert "Is a directory" in status.message and spec.log_path in status.message


def test_launch_is_idempotent(executor: BaseExecutor, tmp_path: Path) -> None:
    spec = sh("once", f"echo ran; {wait_for_file(tmp_path / 'go')}", tmp_path)
    first = executor.launch(spec)
    again = executor.launch(spec)
    assert again.name == first.name
    wait_until(lambda: executor.status("once").state is ProcessState.RUNNING)
    assert executor.launch(spec).pid == executor.status("once").pid
    (tmp_path / "go").touch()
    executor.wait("once", timeout=WAIT)
    assert executor.launch(spec).state is ProcessState.SUCCEEDED
    assert read_log(tmp_path, "once").splitlines() == ["ran"]


def test_queues_until_slots_free(make_executor: Factory, tmp_path: Path) -> None:
    executor = make_executor(cpu=1)
    stamp = "$(date +%s%N)"
    first = f"echo start {stamp}; {wait_for_file(tmp_path / 'go')}; echo end {stamp}"
    executor.launch(sh("a", first, tmp_path, cpu=1))
    b = executor.launch(sh("b", f"echo start {stamp}", tmp_path, cpu=1))
    assert b.state is ProcessState.PENDING
    wait_until(lambda: "start" in read_log(tmp_path, "a"))
    assert executor.status("b").state is ProcessState.PENDING
    (tmp_path / "go").touch()
    for name in ("a", "b"):
        assert executor.wait(name, timeout=WAIT).state is ProcessState.SUCCEEDED
    a_end = int(read_log(tmp_path, "a").split("end ")[1])
    b_start = int(read_log(tmp_path, "b").split("start ")[1])
    assert b_start >= a_end


def test_gang_starts_all_or_nothing(make_executor: Factory, tmp_path: Path) -> None:
    executor = make_executor(cpu=2)
    executor.launch(sh("blocker", wait_for_file(tmp_path / "go"), tmp_path, cpu=1))
    gang = [sh(f"g{i}", "echo started", tmp_path, cpu=1, labels={"gang": "g"}) for i in (0, 1)]
    statuses = executor.launch_gang(gang)
    assert [s.state for s in statuses] == [ProcessState.PENDING, ProcessState.PENDING]
    wait_until(lambda: executor.status("blocker").state is ProcessState.RUNNING)
    assert all(executor.status(s.name).state is ProcessState.PENDING for s in gang)
    assert read_log(tmp_path, "g0") == read_log(tmp_path, "g1") == ""
    (tmp_path / "go").touch()
    blocker = executor.wait("blocker", timeout=WAIT)
    done = [executor.wait(s.name, timeout=WAIT) for s in gang]
    assert [s.state for s in done] == [ProcessState.SUCCEEDED] * 2
    assert blocker.finished_at is not None
    assert all(s.started_at is not None and s.started_at >= blocker.finished_at for s in done)
    assert executor.launch_gang(gang)[0].state is ProcessState.SUCCEEDED  # idempotent


def test_partly_known_gang_is_refused(executor: BaseExecutor, tmp_path: Path) -> None:
    executor.launch(sh("m0", "true", tmp_path))
    with pytest.raises(ConflictError):
        executor.launch_gang([sh("m0", "true", tmp_path), sh("m1", "true", tmp_path)])
    with pytest.raises(NotFoundError):
        executor.status("m1")


def test_too_big_is_rejected_at_once(make_executor: Factory, tmp_path: Path) -> None:
    executor = make_executor(cpu=2)
    with pytest.raises(InsufficientResourcesError) as err:
        executor.launch(sh("big", "true", tmp_path, cpu=3))
    assert "cpu=3" in err.value.message and "cpu=2" in err.value.message
    with pytest.raises(InsufficientResourcesError) as err:
        executor.launch(sh("gpu", "true", tmp_path, gpu=1))
    assert "gpu=1" in err.value.message and "gpu=0" in err.value.message
    with pytest.raises(InsufficientResourcesError):
        executor.launch_gang([sh(f"w{i}", "true", tmp_path, cpu=1) for i in range(3)])
    assert executor.list() == []


def test_deadline_kills_the_group(executor: BaseExecutor, tmp_path: Path) -> None:
    status = run(executor, sh("slow", "sleep 60", tmp_path, deadline=0.3))
    assert (status.state, status.reason) == (ProcessState.FAILED, "DeadlineExceeded")
    assert status.exit_code == 128 + 15


def test_kill_takes_the_whole_group(executor: BaseExecutor, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    executor.launch(sh("tree", f"sleep 300 & echo $! > {pidfile}; wait", tmp_path))
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
    grandchild = int(pidfile.read_text())
    main_pid = executor.status("tree").pid
    assert main_pid is not None
    executor.kill("tree", grace_seconds=5)
    executor.kill("tree", grace_seconds=5)  # idempotent
    status = executor.wait("tree", timeout=WAIT)
    assert status.state is ProcessState.KILLED
    wait_until(lambda: gone(grandchild) and gone(main_pid), what="the group to be gone")
    executor.kill("tree")  # still idempotent once finished


def test_kill_escalates_to_sigkill_after_grace(executor: BaseExecutor, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    executor.launch(sh("stubborn", f"trap '' TERM; touch {ready}; sleep 300", tmp_path))
    wait_until(ready.exists)
    executor.kill("stubborn", grace_seconds=0.3)
    status = executor.wait("stubborn", timeout=WAIT)
    assert (status.state, status.exit_code) == (ProcessState.KILLED, 128 + 9)


def test_kill_drops_a_queued_process(make_executor: Factory, tmp_path: Path) -> None:
    executor = make_executor(cpu=1)
    executor.launch(sh("running", wait_for_file(tmp_path / "go"), tmp_path, cpu=1))
    executor.launch(sh("queued", "echo should-not-run", tmp_path, cpu=1))
    executor.kill("queued")
    assert executor.status("queued").state is ProcessState.KILLED
    (tmp_path / "go").touch()
    assert executor.wait("running", timeout=WAIT).state is ProcessState.SUCCEEDED
    assert executor.status("queued").pid is None
    assert read_log(tmp_path, "queued") == ""


def test_wait_with_timeout_returns_current_status(executor: BaseExecutor, tmp_path: Path) -> None:
    executor.launch(sh("long", wait_for_file(tmp_path / "go"), tmp_path))
    status = executor.wait("long", timeout=0.2)
    assert status.state in (ProcessState.PENDING, ProcessState.RUNNING)
    (tmp_path / "go").touch()
    assert executor.wait("long", timeout=WAIT).state is ProcessState.SUCCEEDED


def test_list_by_labels(executor: BaseExecutor, tmp_path: Path) -> None:
    executor.launch(sh("l1", "true", tmp_path, labels={"team": "a", "run": "1"}))
    executor.launch(sh("l2", "true", tmp_path, labels={"team": "a", "run": "2"}))
    executor.launch(sh("l3", "true", tmp_path, labels={"team": "b"}))
    assert sorted(s.name for s in executor.list({"team": "a"})) == ["l1", "l2"]
    assert [s.name for s in executor.list({"team": "a", "run": "2"})] == ["l2"]
    assert sorted(s.name for s in executor.list()) == ["l1", "l2", "l3"]
    assert executor.list({"team": "c"}) == []
    assert executor.status("l3").labels == {"team": "b"}


def test_subscribers_see_every_transition(executor: BaseExecutor, tmp_path: Path) -> None:
    seen: list[tuple[str, ProcessState]] = []
    lock = threading.Lock()

    def record(status: ProcessStatus) -> None:
        executor.status(status.name)  # calling back into the executor must not deadlock
        with lock:
            seen.append((status.name, status.state))

    executor.subscribe(record)
    run(executor, sh("watched", "exit 0", tmp_path))
    run(executor, sh("failing", "exit 1", tmp_path))
    wait_until(lambda: ("failing", ProcessState.FAILED) in seen)
    with lock:
        for name, final in (("watched", ProcessState.SUCCEEDED), ("failing", ProcessState.FAILED)):
            states = [state for n, state in seen if n == name]
            assert states == [ProcessState.PENDING, ProcessState.RUNNING, final]
    executor.unsubscribe(record)
    with lock:
        before = len(seen)
    run(executor, sh("unwatched", "exit 0", tmp_path))
    run(executor, sh("barrier", "exit 0", tmp_path))
    with lock:
        assert not [n for n, _ in seen[before:] if n in ("unwatched", "barrier")]


def test_forget(executor: BaseExecutor, tmp_path: Path) -> None:
    executor.launch(sh("busy", wait_for_file(tmp_path / "go"), tmp_path))
    with pytest.raises(ConflictError):
        executor.forget("busy")
    (tmp_path / "go").touch()
    run(executor, sh("done", "echo kept", tmp_path))
    executor.forget("done")
    with pytest.raises(NotFoundError):
        executor.status("done")
    with pytest.raises(NotFoundError):
        executor.forget("done")
    assert read_log(tmp_path, "done") == "kept\n"
    assert run(executor, sh("done", "echo again", tmp_path)).state is ProcessState.SUCCEEDED


def test_unknown_names(executor: BaseExecutor) -> None:
    for call in (executor.status, executor.wait, executor.kill):
        with pytest.raises(NotFoundError):
            call("missing")


def test_capacity(make_executor: Factory) -> None:
    assert make_executor(cpu=3, gpus=0).capacity() == Resources(cpu=3, memory=8 * 2**30, gpu=0)
