"""Stand-ins for upstream example images: the explicit image mapping and the TF_CONFIG
parameter-server script run as real processes over loopback sockets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flowyard.training.commands import IMAGE_ENTRYPOINTS, has_command, host_argv
from flowyard.training.examples import tf_dist_mnist
from flowyard.training.network import free_ports

SCRIPT = tf_dist_mnist.__file__


def test_mapping_is_explicit_per_image() -> None:
    assert set(IMAGE_ENTRYPOINTS) == {
        "ghcr.io/kubeflow/training-v1/pytorch-dist-mnist:latest",
        "docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727",
        "ghcr.io/kubeflow/training-v1/tf-dist-mnist-test:latest",
        "ghcr.io/kubeflow/training-v1/tf-mnist-with-summaries:latest",
    }
    dist = {"name": "tensorflow", "image": "ghcr.io/kubeflow/training-v1/tf-dist-mnist-test:latest"}
    assert host_argv(dist, python="/py") == ["/py", SCRIPT]
    summaries = {
        "name": "tensorflow",
        "image": "ghcr.io/kubeflow/training-v1/tf-mnist-with-summaries:latest",
        "command": ["python", "/var/tf_mnist/mnist_with_summaries.py", "--max_steps=5"],
    }
    assert host_argv(summaries, python="/py") == ["/py", SCRIPT, "--max_steps=5"]
    other = {"name": "tensorflow", "image": "ghcr.io/kubeflow/training-v1/tf-dist-mnist-test:v2"}
    assert not has_command(other)  # another tag of the same image is not assumed to match
    with pytest.raises(ValueError, match="no command"):
        host_argv(other)


def run_cluster(
    tmp_path: Path, roles: dict[str, int], *args: str, absent: str = ""
) -> dict[str, str]:
    """Start one stand-in process per task of ``roles`` (but ``absent``) with its TF_CONFIG;
    return the logs."""
    ports = iter(free_ports(sum(roles.values())))
    cluster = {r: [f"127.0.0.1:{next(ports)}" for _ in range(n)] for r, n in roles.items()}
    procs = {}
    for role, count in roles.items():
        for index in range(count):
            if f"{role}-{index}" == absent:
                continue
            config = {"cluster": cluster, "task": {"type": role, "index": index}}
            procs[f"{role}-{index}"] = subprocess.Popen(
                [sys.executable, SCRIPT, "--result-file", str(tmp_path / f"{role}-{index}"), *args],
                env={"TF_CONFIG": json.dumps(config), "PATH": "/usr/bin:/bin"},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
    logs = {}
    for task, proc in procs.items():
        out, _ = proc.communicate(timeout=60)
        logs[task] = f"rc={proc.returncode}\n{out}"
    return logs


def test_two_ps_shards_and_a_master(tmp_path: Path) -> None:
    logs = run_cluster(tmp_path, {"master": 1, "ps": 2, "worker": 1}, "--train_steps=50")
    assert all(log.startswith("rc=0") for log in logs.values()), logs
    assert "serving [0, 2, 4, 6]" in logs["ps-0"] and "serving [1, 3, 5, 7]" in logs["ps-1"]
    for ps in ("ps-0", "ps-1"):
        assert "100 updates (master:0=50, worker:0=50)" in logs[ps], logs[ps]
    result = json.loads((tmp_path / "master-0").read_text())
    assert result["final_loss"] < result["initial_loss"] / 10


def test_ps_fails_when_trainers_never_finish(tmp_path: Path) -> None:
    logs = run_cluster(tmp_path, {"ps": 1, "worker": 1}, "--ps-timeout=0.5", absent="worker-0")
    assert logs["ps-0"].startswith("rc=1") and "trainers not done" in logs["ps-0"], logs
