"""TrainerClient-style API: function packaging with typed arguments, run through the runner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowyard.errors import InvalidError
from flowyard.executors.local import LocalExecutor
from flowyard.training.api import build_trainjob, missing_packages
from flowyard.training.packaging import function_script
from flowyard.training.runtimes import default_runtimes
from flowyard.training.trainjob_plan import workspace
from flowyard.training.trainjob_runner import TrainJobRunner

from .helpers import drive, is_true, stored


def report(shape: tuple, lr: float, tags: set, blob: bytes) -> None:
    import json
    import os

    rank = os.environ.get("RANK", os.environ.get("PET_NODE_RANK", "?"))
    with open(f"typed-{rank}.json", "w") as out:
        json.dump(
            {
                "types": [type(v).__name__ for v in (shape, lr, tags, blob)],
                "shape": list(shape),
                "world": os.environ.get("WORLD_SIZE"),
            },
            out,
        )


ARGS = {"shape": (2, 3), "lr": 0.5, "tags": {"a"}, "blob": b"\x00\x01"}


def test_function_script_keeps_types(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = function_script(report, ARGS)
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True, timeout=60)
    result = json.loads((tmp_path / "typed-?.json").read_text())
    assert result["types"] == ["tuple", "float", "set", "bytes"]


def test_bad_functions_are_refused() -> None:
    with pytest.raises(InvalidError, match="named function"):
        function_script(lambda: None)
    with pytest.raises(InvalidError, match="at most"):
        function_script(report, {"blob": b"x" * 200_000})


def test_build_trainjob_and_packages() -> None:
    job = build_trainjob(
        report,
        ARGS,
        num_nodes=2,
        resources_per_node={"cpu": 1},
        packages_to_install=["pyyaml>=6", "definitely-not-installed-pkg==1.0"],
    )
    trainer = job["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["command"][:4] == [
        "torchrun",
        "--no-python",
        "python3",
        "-c",
    ]
    assert trainer["resourcesPerNode"] == {"requests": {"cpu": 1}}
    assert "definitely-not-installed-pkg==1.0" in trainer["command"][-1]
    assert "'pyyaml>=6'" not in trainer["command"][-1]
    assert missing_packages(["PyYAML", "pytest>=1"]) == []


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    ex = LocalExecutor(tmp_path / "executor", grace_seconds=2.0)
    ex.recover()
    yield ex
    ex.shutdown(kill=True)


@pytest.mark.slow
def test_train_function_on_two_torch_nodes(executor: LocalExecutor) -> None:
    pytest.importorskip("torch")
    runtime = next(r for r in default_runtimes() if r["metadata"]["name"] == "torch-distributed")
    job = stored(build_trainjob(report, ARGS, num_nodes=2, name="typed"))
    runner = TrainJobRunner(executor, lambda k, ns, n: runtime)
    drive(runner.sync, job, lambda s: is_true(s, "Complete") or is_true(s, "Failed"), timeout=180)
    logs = "".join(Path(p.log_path).read_text() for p in executor.list())
    assert is_true(job["status"], "Complete"), (job["status"], logs)
    for rank in (0, 1):  # torchrun sets RANK/WORLD_SIZE for each worker from the PET_* env
        result = json.loads((workspace(job) / f"typed-{rank}.json").read_text())
        assert result == {
            "types": ["tuple", "float", "set", "bytes"],
            "shape": [2, 3],
            "world": "2",
        }
