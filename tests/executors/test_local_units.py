"""Local executor building blocks: capacity, spec checks, records."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from flowyard.errors import InvalidError
from flowyard.executors.base import ProcessSpec, ProcessState, Resources
from flowyard.executors.capacity import detect_gpu_count, resolve_capacity
from flowyard.executors.records import ProcessRecord, RecordStore, file_key
from flowyard.executors.specs import validate_gang, validate_spec


def test_capacity_defaults_to_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWYARD_GPUS", raising=False)
    monkeypatch.delenv("FLOWYARD_MAX_PROCESSES", raising=False)
    cap = resolve_capacity(gpus=0)
    cpus = os.cpu_count() or 1
    assert cap.cpu == cpus and cap.memory > 0
    assert cap.max_processes == max(8, 4 * cpus)


def test_capacity_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWYARD_GPUS", "3")
    monkeypatch.setenv("FLOWYARD_MAX_PROCESSES", "5")
    cap = resolve_capacity()
    assert (cap.gpu_ids, cap.max_processes) == (("0", "1", "2"), 5)
    assert resolve_capacity(gpus=["7"], max_processes=2).gpu_ids == ("7",)
    monkeypatch.setenv("FLOWYARD_GPUS", "two")
    with pytest.raises(InvalidError, match="FLOWYARD_GPUS"):
        resolve_capacity()


def test_gpu_count_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "nvidia-smi"
    tool.write_text(
        '#!/bin/sh\n[ "$1" = -L ] || exit 9\n'
        "echo 'GPU 0: NVIDIA H100 (UUID: GPU-aaa)'\necho 'GPU 1: NVIDIA H100 (UUID: GPU-bbb)'\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("FLOWYARD_GPUS", raising=False)
    assert detect_gpu_count() == 2
    assert len(resolve_capacity().gpu_ids) == 2
    tool.write_text("#!/bin/sh\nexit 1\n")
    assert detect_gpu_count() == 0


def spec(**overrides: object) -> ProcessSpec:
    base = ProcessSpec(name="p", argv=["true"], log_path="/tmp/p.log")
    for key, value in overrides.items():
        setattr(base, key, value)
    return base


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"argv": []}, "argv"),
        ({"argv": ["a\0b"]}, "argv[0]"),
        ({"log_path": ""}, "log_path"),
        ({"env": {"A=B": "x"}}, "env['A=B']"),
        ({"resources": Resources(cpu=-1)}, "resources"),
        ({"deadline_seconds": 0}, "deadline_seconds"),
    ],
)
def test_bad_specs_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidError) as err:
        validate_spec(spec(**overrides))
    assert field in [c.field for c in err.value.causes]


def test_gang_checks() -> None:
    with pytest.raises(InvalidError, match="at least one"):
        validate_gang([])
    with pytest.raises(InvalidError, match="unique"):
        validate_gang([spec(), spec()])


def test_file_keys_are_safe_and_distinct() -> None:
    names = ["a/b", "a%2Fb", "..", ".", "x" * 400, "x" * 401, "ns/run-1/step"]
    keys = [file_key(n) for n in names]
    assert len(set(keys)) == len(keys)
    assert all("/" not in k and k not in (".", "..") and len(k) <= 150 for k in keys)


def test_records_round_trip_privately(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "state")
    original = ProcessRecord(
        spec=ProcessSpec(
            name="ns/x",
            argv=["python", "-c", "pass"],
            log_path="/l",
            env={"TOKEN": "secret"},
            resources=Resources(cpu=0.5, memory=10, gpu=1),
            labels={"k": "v"},
            deadline_seconds=3.0,
        ),
        seq=7,
        gang="g",
        state=ProcessState.RUNNING,
        pid=123,
        create_time=1.5,
        gpu_ids=["1"],
        started_at=2.0,
    )
    store.save(original)
    path = store.record_path("ns/x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (tmp_path / "state" / "junk.json").write_text("{not json")
    records, problems = store.load_all()
    assert len(records) == 1 and problems and "junk.json" in problems[0]
    assert records[0].to_json() == original.to_json()
    store.exit_path("ns/x").write_text("3\n")
    assert store.read_exit_code("ns/x") == 3
    store.delete("ns/x")
    assert not path.exists() and store.read_exit_code("ns/x") is None
