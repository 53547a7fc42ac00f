"""Real distributed PyTorch (gloo, CPU) through the gang runner and the LocalExecutor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowyard.executors.local import LocalExecutor
from flowyard.training.plan import job_dir
from flowyard.training.runner import GangRunner
from flowyard.training.runtimes import default_runtimes
from flowyard.training.trainjob_runner import TrainJobRunner

from .helpers import PY, cond, drive, finished, is_true, reference, replica, stored

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

DDP = """
import os, sys, torch, torch.distributed as dist
dist.init_process_group("gloo")
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
world = dist.get_world_size()
assert value.item() == world * (world + 1) / 2, value
dist.destroy_process_group()
result = f"--result-file=result-{os.environ['RANK']}.json"
sys.argv = ["mnist", "--epochs=2", "--samples=256", result]
from flowyard.training.examples import mnist_ddp
mnist_ddp.main()
"""


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    ex = LocalExecutor(tmp_path / "executor", grace_seconds=2.0)
    ex.recover()
    yield ex
    ex.shutdown(kill=True)


def test_two_process_ddp_all_reduce_and_matching_losses(executor: LocalExecutor) -> None:
    job = stored(
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": {"name": "ddp"},
            "spec": {
                "pytorchReplicaSpecs": {
                    "Master": replica("pytorch", DDP),
                    "Worker": replica("pytorch", DDP),
                }
            },
        }
    )
    drive(GangRunner(executor).sync, job, finished, timeout=180)
    logs = {p.name: Path(p.log_path).read_text() for p in executor.list()}
    assert is_true(job["status"], "Succeeded"), (job["status"], logs)
    results = [json.loads((job_dir(job) / f"result-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in results] == [2, 2]
    assert results[0]["losses"] == results[1]["losses"] and len(results[0]["losses"]) == 2
    assert results[0]["losses"][1] < results[0]["losses"][0]  # it learns
    # DDP keeps the replicas identical: same parameters on both ranks.
    assert results[0]["checksum"] == pytest.approx(results[1]["checksum"], rel=1e-6)


def test_upstream_pytorch_simple_example_runs(executor: LocalExecutor) -> None:
    job = stored(reference("training-operator-v1/examples/pytorch_simple.yaml"))
    drive(GangRunner(executor).sync, job, finished, timeout=180)
    logs = "".join(Path(p.log_path).read_text() for p in executor.list())
    assert is_true(job["status"], "Succeeded"), (job["status"], logs)
    assert "rank 0: epoch 1 loss" in logs and "rank 1: epoch 1 loss" in logs


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
