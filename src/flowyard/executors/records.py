"""On-disk process records of the local executor (what survives a control-plane crash).

Layout of the state directory (default ``FLOWYARD_HOME/executor/``, mode 0700 because a spec's
``env`` may hold secrets):

* ``<key>.json``: one record per process (spec, state, pid, process create time, GPU ids, ...),
  written atomically (temporary file, then rename), so a crash leaves the old or the new record,
  never half of one. Records are not fsynced: they guard against a crash of the control plane,
  not of the machine.
* ``<key>.exit``: written by the process's wrapper when the command ends; holds its exit
  status, so it is known even if nobody was watching.
* ``<key>.pid``: written by a forked wrapper (see :mod:`.forking`) as it starts, so a restart
  finds it even if the crash came before its record was saved.
* ``lock``: held (``flock``) by the one executor that owns the directory.

``<key>`` is the process name made safe for a file name.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flowyard.errors import ConflictError
from flowyard.executors.base import Preload, ProcessSpec, ProcessState, ProcessStatus, Resources

_MAX_KEY = 150


@dataclass(eq=False)  # compared (and hashed) by identity: one object per process incarnation
class ProcessRecord:
    """Everything the executor knows about one process. Fields under "runtime" are not saved."""

    spec: ProcessSpec
    seq: int
    gang: str = ""
    state: ProcessState = ProcessState.PENDING
    pid: int | None = None
    create_time: float | None = None
    gpu_ids: list[str] = field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    ending: str = ""  # "Killed" or "DeadlineExceeded" once we started to stop it
    forked: bool = False  # started by a fork server (see .forking), not the shell wrapper
    # runtime
    child: bool = False  # spawned by this executor object, so we reap it ourselves
    escalated: bool = False  # SIGKILL sent by us

    @property
    def name(self) -> str:
        return self.spec.name

    def status(self) -> ProcessStatus:
        return ProcessStatus(
            name=self.spec.name,
            state=self.state,
            labels=dict(self.spec.labels),
            exit_code=self.exit_code,
            pid=self.pid,
            started_at=self.started_at,
            finished_at=self.finished_at,
            reason=self.reason,
            message=self.message,
            log_path=self.spec.log_path,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": dataclasses.asdict(self.spec),
            "seq": self.seq,
            "gang": self.gang,
            "state": self.state.value,
            "pid": self.pid,
            "create_time": self.create_time,
            "gpu_ids": self.gpu_ids,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "message": self.message,
            "ending": self.ending,
            "forked": self.forked,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessRecord:
        spec_data = dict(data["spec"])
        spec_data["resources"] = Resources(**spec_data.get("resources", {}))
        if spec_data.get("preload") is not None:
            preload = spec_data["preload"]
            spec_data["preload"] = Preload(
                modules=tuple(preload["modules"]), env=tuple(map(tuple, preload["env"]))
            )
        return cls(
            spec=ProcessSpec(**spec_data),
            seq=int(data["seq"]),
            gang=str(data.get("gang", "")),
            state=ProcessState(data["state"]),
            pid=data.get("pid"),
            create_time=data.get("create_time"),
            gpu_ids=[str(g) for g in data.get("gpu_ids", [])],
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            exit_code=data.get("exit_code"),
            reason=str(data.get("reason", "")),
            message=str(data.get("message", "")),
            ending=str(data.get("ending", "")),
            forked=bool(data.get("forked", False)),
        )


def file_key(name: str) -> str:
    """A file-name-safe, unique key for a process name."""
    key = quote(name, safe="-_.")
    if key in (".", "..") or len(key) > _MAX_KEY:
        digest = hashlib.sha256(name.encode()).hexdigest()[:24]
        key = f"{key[:60].strip('.')}~{digest}"
    return key


class RecordStore:
    """The state directory. Not thread safe: the executor serialises calls with its lock."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_fd: int | None = None

    def acquire(self) -> None:
        """Take the directory's lock; ConflictError if another executor holds it."""
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConflictError(
                f"executor state directory {self.root} is in use by another executor; "
                "shut that one down first, or give this one its own state_dir"
            ) from None
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def record_path(self, name: str) -> Path:
        return self.root / f"{file_key(name)}.json"

    def exit_path(self, name: str) -> Path:
        return self.root / f"{file_key(name)}.exit"

    def pid_path(self, name: str) -> Path:
        return self.root / f"{file_key(name)}.pid"

    def exists(self, name: str) -> bool:
        return self.record_path(name).exists()

    def save(self, record: ProcessRecord) -> None:
        path = self.record_path(record.name)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(record.to_json(), handle)
        os.replace(tmp, path)

    def delete(self, name: str) -> None:
        for path in (self.record_path(name), self.exit_path(name), self.pid_path(name)):
            path.unlink(missing_ok=True)

    def load_all(self) -> tuple[list[ProcessRecord], list[str]]:
        """Every record, oldest first, and a message for each file that could not be read."""
        records: list[ProcessRecord] = []
        problems: list[str] = []
        for path in sorted(self.root.glob("*.json")):
            try:
                records.append(ProcessRecord.from_json(json.loads(path.read_text())))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                problems.append(f"{path.name}: {exc}")
        for tmp in self.root.glob("*.tmp"):
            tmp.unlink(missing_ok=True)  # a save interrupted by the crash
        records.sort(key=lambda r: r.seq)
        return records, problems

    def read_exit_code(self, name: str) -> int | None:
        """The code the wrapper wrote, or None if there is no (complete) exit file."""
        return _read_number(self.exit_path(name))

    def read_pid(self, name: str) -> int | None:
        """The pid a forked wrapper wrote when it started, or None."""
        return _read_number(self.pid_path(name))


def _read_number(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
