"""What became of a process while the control plane was down (the restart story).

For each record the previous executor left behind, :func:`classify` looks at the machine and
says what to do:

* RUNNING record, and its pid is still our wrapper (same pid, same create time, same process
  group, our exit file on its command line): **adopt** it (watch it again, keep its slots).
* RUNNING record, wrapper gone (or the pid now belongs to someone else): it **ended** while we
  were down; its exit file gives the real exit code. No exit file: **lost**.
* PENDING record: normally **requeue** it (launch had accepted it). But if the crash came
  between starting the process and recording that, the wrapper is found by its exit file on a
  command line or, for a forked wrapper, by its pid file (adopt), or its exit file exists
  (ended), so nothing is ever started twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flowyard.executors.base import ProcessState
from flowyard.executors.records import ProcessRecord, RecordStore
from flowyard.executors.spawn import create_time, identify, reap_if_child
from flowyard.executors.watch import open_pidfd


@dataclass
class Outcome:
    """``action`` is one of "adopt", "ended", "lost", "requeue"."""

    action: str
    pidfd: int | None = None
    exit_code: int | None = None
    message: str = ""


Wrappers = Callable[[], dict[str, tuple[int, float]]]


def classify(
    record: ProcessRecord, store: RecordStore, *, use_pidfd: bool, wrappers: Wrappers
) -> Outcome:
    """What to do with ``record``. ``wrappers()`` maps exit files to running wrappers (see
    :func:`~flowyard.executors.spawn.running_wrappers`); it is called only for PENDING records,
    and should cache its answer."""
    exit_path = store.exit_path(record.name)
    if record.state is ProcessState.PENDING:
        return _classify_pending(record, store, exit_path, use_pidfd, wrappers)
    if record.pid is None:
        return Outcome("lost", message="the record has no pid (it was never started)")
    return _classify_started(record, store, exit_path, use_pidfd)


def _classify_started(
    record: ProcessRecord, store: RecordStore, exit_path: Path, use_pidfd: bool
) -> Outcome:
    assert record.pid is not None
    pidfd = _pidfd(record.pid) if use_pidfd else None
    # The pidfd is opened before the identity check: if the pid is ours now, the pidfd pins
    # that very process, so a later reuse of the number cannot fool the watch.
    seen = identify(record.pid, record.create_time, exit_path, forked=record.forked)
    if seen == "running":
        return Outcome("adopt", pidfd=pidfd)
    if pidfd is not None:
        os.close(pidfd)
    reaped = reap_if_child(record.pid) if seen == "ended" else None
    code = store.read_exit_code(record.name)
    code = code if code is not None else reaped
    if code is not None:
        return Outcome("ended", exit_code=code)
    if seen == "other" and _exists(record.pid):
        why = f"pid {record.pid} now belongs to another program"
    else:
        why = f"process {record.pid} is gone"
    return Outcome(
        "lost",
        message=(
            f"{why} and left no exit status: it ended while the control plane was down "
            "without recording one (killed by a signal, or the machine restarted)"
        ),
    )


def _classify_pending(
    record: ProcessRecord, store: RecordStore, exit_path: Path, use_pidfd: bool, wrappers: Wrappers
) -> Outcome:
    code = store.read_exit_code(record.name)
    if code is not None:  # started just before the crash, and already done
        return Outcome("ended", exit_code=code)
    found = wrappers().get(str(exit_path))
    if found is None:
        pid = store.read_pid(record.name)  # a forked wrapper names itself in its pid file
        created = create_time(pid) if pid is not None else None
        if pid is None or identify(pid, created, exit_path, forked=True) == "other":
            return Outcome("requeue")
        assert created is not None
        found, record.forked = (pid, created), True
    record.pid, record.create_time = found
    record.started_at = record.create_time
    return _classify_started(record, store, exit_path, use_pidfd)


def _pidfd(pid: int) -> int | None:
    try:
        return open_pidfd(pid)
    except ProcessLookupError:
        return None


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
