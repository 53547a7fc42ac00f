"""Local executor scheduling: the fair queue, GPUs and the process cap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowyard.executors.base import ProcessState, Resources
from flowyard.executors.local import LocalExecutor
from flowyard.executors.slots import Entry, Need, Slots, WaitQueue
from tests.executors.helpers import read_log, sh, wait_for_file, wait_until

WAIT = 20.0


def entry(name: str, cpu: float = 0, gpu: int = 0, members: int = 1) -> Entry:
    names = [f"{name}{i}" if members > 1 else name for i in range(members)]
    return Entry(names, [Resources(cpu=cpu, gpu=gpu) for _ in names])


def names(entries: list[Entry]) -> list[str]:
    return [n for e in entries for n in e.names]


def test_queue_is_fifo_when_everything_fits() -> None:
    queue = WaitQueue()
    for name in "abc":
        queue.push(entry(name, cpu=1))
    assert names(queue.pop_ready(Need(3000, 0, 0, 10))) == ["a", "b", "c"]
    assert len(queue) == 0


def test_blocked_gang_earmarks_what_it_needs() -> None:
    queue = WaitQueue()
    queue.push(entry("gang", cpu=2, members=2))  # needs 4 cpu, 2 are free
    queue.push(entry("small", cpu=1))  # must not take the cpu the gang waits for
    queue.push(entry("gpu-only", gpu=1))  # may use what the gang does not need
    assert names(queue.pop_ready(Need(2000, 0, 1, 10))) == ["gpu-only"]
    assert names(queue.pop_ready(Need(4000, 0, 0, 10))) == ["gang0", "gang1"]
    assert names(queue.pop_ready(Need(1000, 0, 0, 10))) == ["small"]


def test_process_cap_is_a_dimension() -> None:
    queue = WaitQueue()
    queue.push(entry("x"))
    queue.push(entry("y"))
    assert names(queue.pop_ready(Need(0, 0, 0, 1))) == ["x"]


def test_remove_takes_the_whole_gang() -> None:
    queue = WaitQueue()
    queue.push(entry("g", members=3))
    removed = queue.remove_containing("g1")
    assert removed is not None and removed.names == ["g0", "g1", "g2"]
    assert queue.remove_containing("g1") is None


def test_slots_hand_out_specific_gpus() -> None:
    slots = Slots(cpu=4, memory=0, gpu_ids=["0", "1", "2"], max_processes=8)
    first, second = slots.take([Resources(gpu=2), Resources(gpu=1)])
    assert (first, second) == (["0", "1"], ["2"])
    slots.give(Resources(gpu=2), first)
    assert slots.take([Resources(gpu=1)]) == [["0"]]
    assert slots.free == Need(4000, 0, 1, 6)


@pytest.fixture
def executors() -> Iterator[list[LocalExecutor]]:
    made: list[LocalExecutor] = []
    yield made
    for executor in made:
        executor.shutdown(kill=True)


def test_gpu_processes_get_their_own_devices(
    tmp_path: Path, executors: list[LocalExecutor]
) -> None:
    executor = LocalExecutor(tmp_path / "state", cpu=4, memory=2**30, gpus=2)
    executors.append(executor)
    script = f'echo "[${{CUDA_VISIBLE_DEVICES-unset}}]"; {wait_for_file(tmp_path / "go")}'
    for name, gpu in (("g1", 1), ("g2", 1), ("cpu", 0)):
        executor.launch(sh(name, script, tmp_path, gpu=gpu))
    third = executor.launch(sh("g3", script, tmp_path, gpu=1))
    assert third.state is ProcessState.PENDING  # both GPUs are taken
    wait_until(lambda: all(read_log(tmp_path, n) for n in ("g1", "g2", "cpu")))
    seen = {read_log(tmp_path, n).strip() for n in ("g1", "g2")}
    assert seen == {"[0]", "[1]"}
    assert read_log(tmp_path, "cpu").strip() == "[]"  # no GPU asked, none visible
    (tmp_path / "go").touch()
    assert executor.wait("g3", timeout=WAIT).state is ProcessState.SUCCEEDED
    assert read_log(tmp_path, "g3").strip() in seen


def test_without_gpus_cuda_variable_is_left_alone(
    tmp_path: Path, executors: list[LocalExecutor]
) -> None:
    executor = LocalExecutor(tmp_path / "state", cpu=1, memory=2**30, gpus=0)
    executors.append(executor)
    executor.launch(sh("p", 'echo "[${CUDA_VISIBLE_DEVICES-unset}]"', tmp_path))
    executor.wait("p", timeout=WAIT)
    assert read_log(tmp_path, "p").strip() == "[unset]"


def test_process_cap_holds_back_specs_that_ask_nothing(
    tmp_path: Path, executors: list[LocalExecutor]
) -> None:
    executor = LocalExecutor(tmp_path / "state", cpu=1, memory=2**30, gpus=0, max_processes=1)
    executors.append(executor)
    executor.launch(sh("first", wait_for_file(tmp_path / "go"), tmp_path))
    assert executor.launch(sh("second", "true", tmp_path)).state is ProcessState.PENDING
    (tmp_path / "go").touch()
    assert executor.wait("second", timeout=WAIT).state is ProcessState.SUCCEEDED


def test_waiting_gang_is_not_overtaken(tmp_path: Path, executors: list[LocalExecutor]) -> None:
    executor = LocalExecutor(tmp_path / "state", cpu=2, memory=2**30, gpus=1)
    executors.append(executor)
    executor.launch(sh("blocker", wait_for_file(tmp_path / "go"), tmp_path, cpu=1))
    executor.launch_gang([sh(f"m{i}", "true", tmp_path, cpu=1) for i in range(2)])
    late = executor.launch(sh("late", "true", tmp_path, cpu=1))
    assert late.state is ProcessState.PENDING  # its cpu is earmarked for the gang
    gpu_job = executor.launch(sh("gpu-job", "true", tmp_path, gpu=1))
    assert gpu_job.state is not ProcessState.PENDING  # the gang does not need the GPU
    (tmp_path / "go").touch()
    done = {n: executor.wait(n, timeout=WAIT) for n in ("m0", "m1", "late")}
    assert all(s.state is ProcessState.SUCCEEDED for s in done.values())
    gang_start = min(done["m0"].started_at or 0, done["m1"].started_at or 0)
    assert (done["late"].started_at or 0) >= gang_start


def test_start_failure_of_a_gang_member_fails_the_gang(
    tmp_path: Path, executors: list[LocalExecutor]
) -> None:
    executor = LocalExecutor(tmp_path / "state", cpu=2, memory=2**30, gpus=0)
    executors.append(executor)
    good = sh("good", "sleep 60", tmp_path)
    bad = sh("bad", "true", tmp_path, cwd=str(tmp_path / "missing"))
    executor.launch_gang([good, bad])
    failed = executor.wait("bad", timeout=WAIT)
    assert (failed.state, failed.reason) == (ProcessState.FAILED, "StartError")
    assert "missing" in failed.message and "missing" in read_log(tmp_path, "bad")
    other = executor.wait("good", timeout=WAIT)
    assert (other.state, other.reason) == (ProcessState.FAILED, "StartError")
    assert "'bad' could not start" in other.message
    assert executor.launch(sh("after", "true", tmp_path, cpu=2)).state is not ProcessState.PENDING
