"""The local executor: runs each ProcessSpec as a subprocess of this machine (DESIGN §6).

How it keeps the contract of :mod:`flowyard.executors.base` (details in ``docs/executors.md``):

* Start: ``/bin/sh`` wrapper via ``posix_spawn`` in a new session (see :mod:`.spawn`), scrubbed
  environment, log file appended, ``CUDA_VISIBLE_DEVICES`` set to the GPUs it was given
  (empty for processes that asked for none, whenever this executor hands out GPUs). A Python
  process whose spec carries a ``Preload`` is forked by a fork server instead, with a wrapper
  that has the same duties (:mod:`.forking`).
* Slots and queue: :mod:`.slots` (FIFO with earmarks; a gang waits and starts as one unit).
* Watching: one thread (:mod:`.watch`) notices exits through pidfds and runs the deadline and
  kill-grace timers; subscribers are called on another thread (:mod:`.events`).
* When the wrapper ends, whatever it left behind in its process group is killed (as when a
  container's main process exits).
* Records (:mod:`.records`) survive a crash; :meth:`LocalExecutor.recover` adopts or settles
  them (:mod:`.recovery`). Call ``recover()`` before launching: until then, launching a name
  that has a record on disk is refused.

All public methods are thread safe; one re-entrant lock guards the state, and no subscriber is
ever called while it is held.
"""

from __future__ import annotations

import builtins
import copy
import functools
import itertools
import logging
import os
import signal
import threading
import time
from pathlib import Path

from flowyard import config
from flowyard.errors import (
    ConflictError,
    ExecutorError,
    InsufficientResourcesError,
    NotFoundError,
)
from flowyard.executors.base import (
    BaseExecutor,
    ProcessSpec,
    ProcessState,
    ProcessStatus,
    Resources,
    StatusCallback,
)
from flowyard.executors.capacity import resolve_capacity
from flowyard.executors.events import Dispatcher
from flowyard.executors.forking import ForkServers
from flowyard.executors.records import ProcessRecord, RecordStore
from flowyard.executors.recovery import classify
from flowyard.executors.slots import Entry, Slots, WaitQueue
from flowyard.executors.spawn import (
    append_log,
    create_time,
    describe_exit,
    exit_code_from_wait_status,
    identify,
    may_signal_group,
    prepare_start,
    reap_if_child,
    resolve_argv,
    running_wrappers,
    scrubbed_env,
    signal_group,
    spawn,
)
from flowyard.executors.specs import validate_gang, validate_spec
from flowyard.executors.watch import Probe, Watcher, open_pidfd

log = logging.getLogger(__name__)

# Why we are stopping a running process (record.ending), which decides its final state.
KILLED, DEADLINE, GANG_ABORT = "Killed", "DeadlineExceeded", "GangStartFailed"


class LocalExecutor(BaseExecutor):
    """Runs processes on this machine. ``state_dir`` defaults to ``FLOWYARD_HOME/executor``;
    capacity arguments default to the machine (see :mod:`.capacity`). ``grace_seconds`` is the
    SIGTERM-to-SIGKILL grace for deadlines and ``shutdown(kill=True)``."""

    def __init__(
        self,
        state_dir: str | Path | None = None,
        *,
        cpu: float | None = None,
        memory: int | None = None,
        gpus: int | list[str] | None = None,
        max_processes: int | None = None,
        grace_seconds: float = 5.0,
        poll_interval: float = 0.2,
        use_pidfd: bool = True,
    ) -> None:
        cap = resolve_capacity(cpu=cpu, memory=memory, gpus=gpus, max_processes=max_processes)
        self._capacity = Resources(cap.cpu, cap.memory, len(cap.gpu_ids))
        self._manage_gpus = bool(cap.gpu_ids)
        self._grace = grace_seconds
        self._use_pidfd = use_pidfd
        self._store = RecordStore(Path(state_dir) if state_dir else config.home() / "executor")
        self._store.acquire()
        self._slots = Slots(cap.cpu, cap.memory, cap.gpu_ids, cap.max_processes)
        self._queue = WaitQueue()
        self._procs: dict[str, ProcessRecord] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._seq = itertools.count(time.time_ns())
        self._recovered = False
        self._closing = False  # shutdown began: nothing new is launched or started
        self._closed = False
        self._events = Dispatcher()
        self._watcher = Watcher(self._on_exit, poll_interval=poll_interval)
        self._forks = ForkServers(self._store.root)

    @property
    def state_dir(self) -> Path:
        return self._store.root

    def capacity(self) -> Resources:
        return self._capacity

    # ----------------------------------------------------------------- launching

    def launch(self, spec: ProcessSpec) -> ProcessStatus:
        validate_spec(spec)
        with self._lock:
            self._ensure_open()
            known = self._procs.get(spec.name)
            if known is not None:
                return known.status()
            self._refuse_unrecovered([spec.name])
            self._slots.check_possible(f"process {spec.name!r}", [spec.resources])
            self._enqueue([spec], gang="")
            return self._procs[spec.name].status()

    def launch_gang(self, specs: builtins.list[ProcessSpec]) -> builtins.list[ProcessStatus]:
        validate_gang(specs)
        names = [s.name for s in specs]
        with self._lock:
            self._ensure_open()
            known = [n for n in names if n in self._procs]
            if len(known) == len(names):
                return [self._procs[n].status() for n in names]
            if known:
                raise ConflictError(
                    f"gang {names} partly exists already ({known}); a gang is launched as a "
                    "whole: use new names, or kill and forget the existing processes first"
                )
            self._refuse_unrecovered(names)
            what = f"gang of {len(specs)} processes {names}"
            self._slots.check_possible(what, [s.resources for s in specs])
            self._enqueue(specs, gang=f"gang-{names[0]}")
            return [self._procs[n].status() for n in names]

    def _enqueue(self, specs: builtins.list[ProcessSpec], gang: str) -> None:
        for spec in specs:
            record = ProcessRecord(spec=copy.deepcopy(spec), seq=next(self._seq), gang=gang)
            record.reason, record.message = "Queued", "waiting for free slots"
            self._procs[spec.name] = record
            self._save_and_publish(record)
        self._queue.push(Entry([s.name for s in specs], [s.resources for s in specs]))
        self._schedule()

    def _schedule(self) -> None:
        """Start every queued entry that may start now (bounded: each round empties entries)."""
        if self._closing:
            return
        while ready := self._queue.pop_ready(self._slots.free):
            for entry in ready:
                self._start_entry(entry)

    def _start_entry(self, entry: Entry) -> None:
        members = [self._procs[n] for n in entry.names]
        for record, gpu_ids in zip(members, self._slots.take(entry.resources), strict=True):
            record.gpu_ids = gpu_ids
        for index, record in enumerate(members):
            try:
                self._start(record)
            except (OSError, ValueError) as exc:
                self._abort_start(members, index, exc)
                return

    def _start(self, record: ProcessRecord) -> None:
        spec = record.spec
        cuda = ",".join(record.gpu_ids) if self._manage_gpus else None
        env = scrubbed_env(spec.env, cuda)
        exit_path = self._store.exit_path(spec.name)
        prepare_start(spec.cwd, spec.log_path, exit_path)
        argv = resolve_argv(spec.argv, env)
        pid = self._forks.start(spec, argv, env, exit_path, self._store.pid_path(spec.name))
        if pid is None:
            pid = spawn(argv, env, spec.cwd, spec.log_path, exit_path)
            record.child = True
        else:
            record.forked = True
        record.pid = pid
        record.create_time = create_time(pid)
        record.started_at = time.time()
        self._set_state(record, ProcessState.RUNNING, "Started", "")
        self._watch(record, open_pidfd(pid) if self._use_pidfd else None)

    def _abort_start(
        self, members: builtins.list[ProcessRecord], failed: int, exc: Exception
    ) -> None:
        """A member could not start: the gang starts none (those already started are killed)."""
        culprit = members[failed]
        for index, record in enumerate(members):
            if index == failed:
                message = f"could not start: {exc}"
            else:
                message = f"gang member {culprit.name!r} could not start: {exc}"
            append_log(record.spec.log_path, message)
            if index < failed and record.pid is not None:
                record.ending, record.message = GANG_ABORT, message
                self._save(record)
                signal_group(record.pid, signal.SIGKILL)
                continue  # the watcher reports its end (and frees its slots)
            record.finished_at = time.time()
            self._slots.give(record.spec.resources, record.gpu_ids)
            self._set_state(record, ProcessState.FAILED, "StartError", message)

    def _refuse_unrecovered(self, names: builtins.list[str]) -> None:
        if self._recovered:
            return
        for name in names:
            if self._store.exists(name):
                raise ConflictError(
                    f"process {name!r} has a record left by a previous executor in "
                    f"{self._store.root}; call recover() before launching"
                )

    # ----------------------------------------------------------------- watching

    def _watch(self, record: ProcessRecord, pidfd: int | None) -> None:
        self._watcher.watch(record, pidfd, self._probe(record))
        deadline = record.spec.deadline_seconds
        if deadline is not None and record.started_at is not None:
            remaining = record.started_at + deadline - time.time()
            when = time.monotonic() + max(0.0, remaining)
            self._watcher.call_at(when, lambda: self._on_deadline(record))

    def _probe(self, record: ProcessRecord) -> Probe:
        """Liveness check for the polling fallback (used only without pidfds)."""
        pid, exit_path = record.pid, self._store.exit_path(record.name)
        assert pid is not None
        if record.child:
            flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
            return lambda: os.waitid(os.P_PID, pid, flags) is None
        forked = record.forked
        return lambda: identify(pid, record.create_time, exit_path, forked=forked) == "running"

    def _on_exit(self, record: ProcessRecord) -> None:
        with self._lock:
            if (
                record.state is not ProcessState.RUNNING
                or self._procs.get(record.name) is not record
            ):
                return
            code = self._collect_exit_code(record)
            self._finish(record, code)
            self._slots.give(record.spec.resources, record.gpu_ids)
            self._schedule()

    def _collect_exit_code(self, record: ProcessRecord) -> int | None:
        pid = record.pid
        assert pid is not None
        # Kill what the ended wrapper left behind in its group. Our own child is not reaped yet,
        # so it still holds the group id; an adopted one is checked first (see may_signal_group).
        exit_path = self._store.exit_path(record.name)
        if record.child or may_signal_group(
            pid, record.create_time, exit_path, forked=record.forked
        ):
            signal_group(pid, signal.SIGKILL)
        if record.child:
            try:
                return exit_code_from_wait_status(os.waitpid(pid, 0)[1])
            except ChildProcessError:
                return self._store.read_exit_code(record.name)
        code = self._store.read_exit_code(record.name)
        # a forked wrapper's server keeps it until told; a spawned one is reaped by whoever
        # started it (this Python process, if the executor object was replaced)
        reaped = self._forks.reap(pid) if record.forked else reap_if_child(pid)
        if code is None:
            code = reaped
        if code is None and record.escalated:
            code = 128 + signal.SIGKILL
        return code

    def _finish(self, record: ProcessRecord, code: int | None) -> None:
        record.exit_code, record.finished_at = code, time.time()
        if record.ending == KILLED:
            state, reason, message = ProcessState.KILLED, KILLED, "killed on request"
        elif record.ending == GANG_ABORT:
            state, reason, message = ProcessState.FAILED, "StartError", record.message
        elif record.ending == DEADLINE:
            state, reason = ProcessState.FAILED, DEADLINE
            message = f"ran longer than its deadline of {record.spec.deadline_seconds:g} s"
        elif code == 0:
            state, reason, message = ProcessState.SUCCEEDED, "Completed", ""
        elif code is None:
            state, reason = ProcessState.LOST, "Lost"
            message = record.message or "ended without recording an exit status"
        else:
            state, reason, message = ProcessState.FAILED, "Error", describe_exit(code)
        self._set_state(record, state, reason, message)

    def _set_state(self, record: ProcessRecord, state: ProcessState, reason: str, msg: str) -> None:
        record.state, record.reason, record.message = state, reason, msg
        self._save_and_publish(record)
        self._changed.notify_all()

    def _save_and_publish(self, record: ProcessRecord) -> None:
        self._save(record)
        self._events.publish(record.status())

    def _save(self, record: ProcessRecord) -> None:
        try:
            self._store.save(record)
        except OSError:  # keep running and reporting; only crash recovery loses this change
            log.exception("could not save the record of process %r", record.name)

    # ----------------------------------------------------------------- stopping

    def kill(self, name: str, grace_seconds: float = 5.0) -> None:
        with self._lock:
            record = self._get(name)
            if record.state.finished:
                return
            if record.state is ProcessState.PENDING:
                self._drop_queued(record)
                return
            if not record.ending:
                record.ending = KILLED
                self._save(record)
            self._terminate(record, grace_seconds)

    def _drop_queued(self, record: ProcessRecord) -> None:
        entry = self._queue.remove_containing(record.name)
        for name in entry.names if entry else [record.name]:
            member = self._procs[name]
            member.finished_at = time.time()
            member.ending = KILLED
            message = "killed before it started"
            if name != record.name:
                message = f"not started: gang member {record.name!r} was killed first"
            self._set_state(member, ProcessState.KILLED, KILLED, message)
        self._schedule()  # the earmark it held is free again

    def _terminate(self, record: ProcessRecord, grace: float) -> None:
        assert record.pid is not None
        if grace <= 0:
            self._escalate(record)
            return
        signal_group(record.pid, signal.SIGTERM)
        self._watcher.call_at(time.monotonic() + grace, lambda: self._escalate(record))

    def _escalate(self, record: ProcessRecord) -> None:
        with self._lock:
            if record.state is ProcessState.RUNNING and self._procs.get(record.name) is record:
                assert record.pid is not None
                record.escalated = True
                signal_group(record.pid, signal.SIGKILL)

    def _on_deadline(self, record: ProcessRecord) -> None:
        with self._lock:
            if (
                record.state is not ProcessState.RUNNING
                or self._procs.get(record.name) is not record
            ):
                return
            if not record.ending:
                record.ending = DEADLINE
                self._save(record)
                self._terminate(record, self._grace)

    # ----------------------------------------------------------------- queries

    def status(self, name: str) -> ProcessStatus:
        with self._lock:
            return self._get(name).status()

    def list(self, labels: dict[str, str] | None = None) -> builtins.list[ProcessStatus]:
        wanted = (labels or {}).items()
        with self._lock:
            records = sorted(self._procs.values(), key=lambda r: r.seq)
            return [r.status() for r in records if wanted <= r.spec.labels.items()]

    def wait(self, name: str, timeout: float | None = None) -> ProcessStatus:
        end = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                record = self._get(name)
                if record.state.finished or self._closed:
                    return record.status()
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return record.status()
                self._changed.wait(remaining)

    def forget(self, name: str) -> None:
        with self._lock:
            record = self._get(name)
            if not record.state.finished:
                raise ConflictError(
                    f"process {name!r} is {record.state.value}; kill it and wait for it to "
                    "finish before forgetting it"
                )
            del self._procs[name]
            self._store.delete(name)

    def subscribe(self, callback: StatusCallback) -> None:
        self._events.subscribe(callback)

    def unsubscribe(self, callback: StatusCallback) -> None:
        self._events.unsubscribe(callback)

    def _get(self, name: str) -> ProcessRecord:
        record = self._procs.get(name)
        if record is None:
            raise NotFoundError(f"no process named {name!r} in this executor")
        return record

    def _ensure_open(self) -> None:
        if self._closing:
            raise ExecutorError("the executor has been shut down; create a new one")

    # ----------------------------------------------------------------- restart

    def recover(self) -> builtins.list[ProcessStatus]:
        """Adopt or settle what a previous executor left in the state directory (see
        :mod:`.recovery`); re-queue what it had accepted but not started. Every known process
        is published to subscribers once. Calling it again just lists the processes."""
        with self._lock:
            self._ensure_open()
            if not self._recovered:
                self._recovered = True
                self._recover_records()
            return self.list()

    def _recover_records(self) -> None:
        records, problems = self._store.load_all()
        for problem in problems:
            log.warning("unreadable executor record skipped: %s", problem)
        requeue: dict[str, builtins.list[ProcessRecord]] = {}
        wrappers = functools.cache(running_wrappers)
        for record in records:
            if record.name in self._procs:
                continue
            self._procs[record.name] = record
            if record.state.finished:
                self._events.publish(record.status())
                continue
            outcome = classify(record, self._store, use_pidfd=self._use_pidfd, wrappers=wrappers)
            if outcome.action == "adopt":
                self._adopt(record, outcome.pidfd)
            elif outcome.action == "requeue":
                requeue.setdefault(record.gang or record.name, []).append(record)
                self._events.publish(record.status())
            else:
                record.message = outcome.message
                self._finish(record, outcome.exit_code)
        for members in requeue.values():
            self._requeue(members)
        self._schedule()

    def _adopt(self, record: ProcessRecord, pidfd: int | None) -> None:
        record.child = False
        self._slots.adopt(record.spec.resources, record.gpu_ids)
        self._set_state(record, ProcessState.RUNNING, "Adopted", "adopted after a restart")
        self._watch(record, pidfd)
        if record.ending:  # the previous executor was stopping it when it went down
            self._terminate(record, self._grace)

    def _requeue(self, members: builtins.list[ProcessRecord]) -> None:
        resources = [m.spec.resources for m in members]
        try:
            self._slots.check_possible(f"process(es) {[m.name for m in members]}", resources)
        except InsufficientResourcesError as exc:  # capacity shrank since they were accepted
            for member in members:
                member.finished_at = time.time()
                self._set_state(member, ProcessState.FAILED, "InsufficientResources", str(exc))
            return
        self._queue.push(Entry([m.name for m in members], resources))

    def shutdown(self, *, kill: bool = False) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = True
            names = [n for n, r in self._procs.items() if not r.state.finished] if kill else []
        for name in names:
            self.kill(name, self._grace)
        for name in names:
            self.wait(name, timeout=self._grace + 5.0)
        with self._lock:
            self._closed = True
            self._changed.notify_all()
            self._forks.close()
        self._watcher.stop()
        self._events.stop()
        self._store.release()
