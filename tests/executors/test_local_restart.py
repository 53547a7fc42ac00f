"""The local executor's restart story: records survive a real crash of the control plane."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from flowyard.errors import ConflictError, ExecutorError
from flowyard.executors.base import ProcessSpec, ProcessState, ProcessStatus
from flowyard.executors.local import LocalExecutor
from flowyard.executors.records import ProcessRecord, RecordStore
from tests.executors.helpers import EXEC_SHELL, forked, gone, sh, wait_for_file, wait_until

WAIT = 20.0

# The control plane that will crash: it launches the processes, reports their pids, then idles
# until the test kills it with SIGKILL (no shutdown, no cleanup of any kind).
CRASHING_CONTROL_PLANE = textwrap.dedent(
    """
    import json, sys, time
    from flowyard.executors.base import Preload, ProcessSpec
    from flowyard.executors.local import LocalExecutor

    state, logs, go, report, launcher = sys.argv[1:6]
    scripts = {
        "a": f'i=0; while [ ! -e "{go}" ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i+1)); done'
        + "; exit 5",
        "b": "sleep 1; exit 3",
        "c": "sleep 300",
        "d": "exit 0",
        "e": "sleep 300",
    }
    executor = LocalExecutor(state, cpu=8, memory=2**30, gpus=0)
    pids = {}
    for name, script in scripts.items():
        spec = ProcessSpec(name=name, argv=["sh", "-c", script], log_path=f"{logs}/{name}.log")
        if launcher == "forked":
            spec.argv = [sys.executable, "-c", EXEC_SHELL, "-c", script]
            spec.preload = Preload(modules=("json",))
        pids[name] = executor.launch(spec).pid
    with open(report + ".tmp", "w") as handle:
        json.dump(pids, handle)
    import os
    os.replace(report + ".tmp", report)
    time.sleep(120)
    """
).replace("EXEC_SHELL", repr(EXEC_SHELL))


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def cleanup() -> Iterator[list[int]]:
    """Process groups to SIGKILL at the end, whatever happened."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


@pytest.fixture(params=["shell", "forked"])
def launcher(request: pytest.FixtureRequest) -> str:
    """How the processes are started: the shell wrapper, or the fork server's wrapper."""
    return str(request.param)


def started(launcher: str, spec: ProcessSpec) -> ProcessSpec:
    return forked(spec) if launcher == "forked" else spec


def crash_a_control_plane(state: Path, tmp_path: Path, launcher: str) -> dict[str, int]:
    report = tmp_path / "pids.json"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CRASHING_CONTROL_PLANE,
            str(state),
            str(tmp_path / "logs"),
            str(tmp_path / "go"),
            str(report),
            launcher,
        ],
    )
    try:
        wait_until(lambda: report.exists() or child.poll() is not None, what="the child's pids")
        assert child.poll() is None, "the control plane child died before reporting"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=WAIT)
    pids: dict[str, int] = json.loads(report.read_text())
    return pids


@pytest.mark.parametrize("use_pidfd", [True, False], ids=["pidfd", "polling"])
def test_recover_after_a_real_crash(
    state: Path, tmp_path: Path, cleanup: list[int], use_pidfd: bool, launcher: str
) -> None:
    pids = crash_a_control_plane(state, tmp_path, launcher)
    cleanup.extend(pids.values())
    store = RecordStore(state)
    records, _ = store.load_all()
    assert {r.forked for r in records} == {launcher == "forked"}
    # (c) vanishes without a trace: no exit file, its whole group killed.
    store.exit_path("c").unlink(missing_ok=True)
    os.killpg(pids["c"], signal.SIGKILL)
    wait_until(lambda: gone(pids["c"]), what="(c) to vanish")
    # (b) and (d) end on their own while no control plane is running.
    for name in ("b", "d"):
        wait_until(store.exit_path(name).exists, what=f"({name}) to finish")

    executor = LocalExecutor(state, cpu=8, memory=2**30, gpus=0, use_pidfd=use_pidfd)
    try:
        events: list[ProcessStatus] = []
        executor.subscribe(events.append)
        found = {s.name: s for s in executor.recover()}
        a, b, c, d, e = (found[n] for n in "abcde")
        assert (a.state, a.reason, a.pid) == (ProcessState.RUNNING, "Adopted", pids["a"])
        assert (b.state, b.exit_code) == (ProcessState.FAILED, 3)
        assert (c.state, c.exit_code) == (ProcessState.LOST, None)
        assert "no exit status" in c.message
        assert (d.state, d.exit_code) == (ProcessState.SUCCEEDED, 0)
        assert e.state is ProcessState.RUNNING
        wait_until(lambda: {s.name for s in events} == set("abcde"), what="recovery events")

        # An adopted process can be killed, and its end is noticed.
        executor.kill("e", grace_seconds=2)
        assert executor.wait("e", timeout=WAIT).state is ProcessState.KILLED
        wait_until(lambda: gone(pids["e"]))

        # (a) keeps running under the new executor and reports its real exit code.
        (tmp_path / "go").touch()
        final = executor.wait("a", timeout=WAIT)
        assert (final.state, final.exit_code, final.reason) == (ProcessState.FAILED, 5, "Error")
        assert executor.recover() == executor.list()  # a second recover only lists
    finally:
        executor.shutdown(kill=True)


def test_a_reused_pid_is_not_adopted(state: Path, tmp_path: Path, cleanup: list[int]) -> None:
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    cleanup.append(stranger.pid)
    created = psutil.Process(stranger.pid).create_time()
    store = RecordStore(state)
    spec = ProcessSpec(name="old", argv=["true"], log_path=str(tmp_path / "old.log"))
    # Our "old" process had this pid long ago; the same number now belongs to `sleep`.
    store.save(
        ProcessRecord(
            spec=spec,
            seq=1,
            state=ProcessState.RUNNING,
            pid=stranger.pid,
            create_time=created - 3600,
            started_at=created - 3600,
        )
    )
    # Same pid and create time, but the command line is not one of ours: not adopted either.
    twin = ProcessSpec(name="twin", argv=["true"], log_path=str(tmp_path / "twin.log"))
    store.save(
        ProcessRecord(
            spec=twin,
            seq=2,
            state=ProcessState.RUNNING,
            pid=stranger.pid,
            create_time=created,
            started_at=created,
        )
    )
    executor = LocalExecutor(state, cpu=2, memory=2**30, gpus=0)
    try:
        found = {s.name: s for s in executor.recover()}
        for name in ("old", "twin"):
            assert found[name].state is ProcessState.LOST, found[name]
            assert "another program" in found[name].message
        assert stranger.poll() is None  # left alone, never signalled
        assert executor.capacity().cpu == 2
    finally:
        executor.shutdown(kill=True)
        stranger.kill()
        stranger.wait()


def test_start_time_mismatch_is_not_adopted(state: Path, tmp_path: Path) -> None:
    first = LocalExecutor(state, cpu=1, memory=2**30, gpus=0)
    first.launch(sh("ours", "sleep 60", tmp_path))
    pid = first.status("ours").pid
    assert pid is not None
    first.shutdown()
    try:
        store = RecordStore(state)
        records, _ = store.load_all()
        record = next(r for r in records if r.name == "ours")
        assert record.create_time is not None
        record.create_time -= 3600  # the record is of an older process that had this pid
        store.save(record)
        second = LocalExecutor(state, cpu=1, memory=2**30, gpus=0)
        try:
            assert second.recover()[0].state is ProcessState.LOST
        finally:
            second.shutdown()
    finally:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_shutdown_without_kill_hands_over(state: Path, tmp_path: Path, launcher: str) -> None:
    go = tmp_path / "go"
    first = LocalExecutor(state, cpu=1, memory=2**30, gpus=0)
    first.launch(started(launcher, sh("runner", f"{wait_for_file(go)}; exit 4", tmp_path, cpu=1)))
    first.launch(started(launcher, sh("waiting", "echo second", tmp_path, cpu=1)))
    wait_until(lambda: first.status("runner").state is ProcessState.RUNNING)
    runner_pid = first.status("runner").pid
    first.shutdown()
    assert runner_pid is not None and not gone(runner_pid)

    second = LocalExecutor(state, cpu=1, memory=2**30, gpus=0)
    try:
        with pytest.raises(ConflictError, match="recover"):
            second.launch(sh("waiting", "true", tmp_path))
        found = {s.name: s for s in second.recover()}
        assert found["runner"].state is ProcessState.RUNNING
        assert found["waiting"].state is ProcessState.PENDING  # re-queued, slot still taken
        go.touch()
        assert second.wait("runner", timeout=WAIT).exit_code == 4
        assert second.wait("waiting", timeout=WAIT).state is ProcessState.SUCCEEDED
        assert gone(runner_pid)
    finally:
        second.shutdown(kill=True)


def test_shutdown_with_kill_stops_everything(state: Path, tmp_path: Path) -> None:
    executor = LocalExecutor(state, cpu=1, memory=2**30, gpus=0, grace_seconds=1)
    executor.launch(sh("one", "sleep 300", tmp_path, cpu=1))
    executor.launch(sh("two", "sleep 300", tmp_path, cpu=1))
    wait_until(lambda: executor.status("one").state is ProcessState.RUNNING)
    pid = executor.status("one").pid
    assert pid is not None
    executor.shutdown(kill=True)
    assert gone(pid)
    with pytest.raises(ExecutorError, match="shut down"):
        executor.launch(sh("three", "true", tmp_path))
    records, _ = RecordStore(state).load_all()
    assert {r.name: r.state for r in records} == {
        "one": ProcessState.KILLED,
        "two": ProcessState.KILLED,
    }


def test_one_executor_per_state_dir(state: Path) -> None:
    executor = LocalExecutor(state, cpu=1, memory=2**30, gpus=0)
    try:
        with pytest.raises(ConflictError, match="in use"):
            LocalExecutor(state, cpu=1, memory=2**30, gpus=0)
    finally:
        executor.shutdown()
    LocalExecutor(state, cpu=1, memory=2**30, gpus=0).shutdown()


def test_a_start_interrupted_by_a_crash_is_not_repeated(
    state: Path, tmp_path: Path, launcher: str
) -> None:
    go = tmp_path / "go"
    first = LocalExecutor(state, cpu=2, memory=2**30, gpus=0)
    first.launch(started(launcher, sh("started", f"echo ran; {wait_for_file(go)}", tmp_path)))
    first.launch(started(launcher, sh("finished", "echo ran; exit 2", tmp_path)))
    first.wait("finished", timeout=WAIT)
    pid = first.status("started").pid
    first.shutdown()
    # Rewind both records to what a crash right after spawning would have left: PENDING.
    store = RecordStore(state)
    records, _ = store.load_all()
    for record in records:
        record.state, record.pid, record.create_time = ProcessState.PENDING, None, None
        record.forked = False
        store.save(record)

    second = LocalExecutor(state, cpu=2, memory=2**30, gpus=0)
    try:
        found = {s.name: s for s in second.recover()}
        assert (found["started"].state, found["started"].pid) == (ProcessState.RUNNING, pid)
        assert (found["finished"].state, found["finished"].exit_code) == (ProcessState.FAILED, 2)
        go.touch()
        assert second.wait("started", timeout=WAIT).state is ProcessState.SUCCEEDED
        for name in ("started", "finished"):
            assert (tmp_path / "logs" / f"{name}.log").read_text() == "ran\n"
    finally:
        second.shutdown(kill=True)
