"""Real distributed PyTorch (gloo, CPU) through the TrainJob runner and the LocalExecutor.

The 2-process DDP PyTorchJob and the upstream ``pytorch_simple.yaml`` run through a real server
in ``test_e2e.py`` (not repeated here to keep the suite's runtime down)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowyard.executors.local import LocalExecutor
from flowyard.training.runtimes import default_runtimes
from flowyard.training.trainjob_runner import TrainJobRunner

from .helpers import PY, cond, drive, is_true, reference, stored

pytest.importorskip("torch")
pytestmark = pytest.mark.slow


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    ex = LocalExecutor(tmp_path / "executor", grace_seconds=2.0)
    ex.recover()
    yield ex
    ex.shutdown(kill=True)


def test_upstream_trainjob_multi_node_example_runs(executor: LocalExecutor) -> None:
    runtime = next(r for r in default_runtimes() if r["metadata"]["name"] == "torch-distributed")
    job = stored(reference("trainer-v2/examples/01-multi-node.yaml"))
    runner = TrainJobRunner(
        executor, lambda k, ns, n: runtime if n == "torch-distributed" else None
    )
    drive(runner.sync, job, lambda s: is_true(s, "Complete") or is_true(s, "Failed"), timeout=240)
    logs = {p.name: Path(p.log_path).read_text() for p in executor.list()}
    assert is_true(job["status"], "Complete"), (job["status"], logs)
    assert cond(job["status"], "Complete")["reason"] == "AllJobsCompleted"
    text = "".join(logs.values())
    assert text.count("WORLD_SIZE: 3") == 3
    assert {f"RANK: {r}" in text for r in range(3)} == {True}
    assert job["status"]["jobsStatus"][0]["name"] == "node"
    assert PY  # the nodes ran on this interpreter (python3 resolves through PATH to it)
