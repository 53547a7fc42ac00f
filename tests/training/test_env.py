"""Environment injection per framework (pure functions) and the MPI launcher files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from flowyard.executors.base import Resources
from flowyard.training import mpi
from flowyard.training.env import pytorch_env, tf_config, xgboost_env
from flowyard.training.network import Endpoint, GangNetwork, free_ports
from flowyard.training.plan import plan_v1, plan_v1_network
from flowyard.training.trainjob_plan import torch_env

from .helpers import replica, stored


def net_for(keys: list[tuple[str, int]], master: tuple[str, int]) -> GangNetwork:
    endpoints = {k: Endpoint("127.0.0.1", 30000 + i) for i, k in enumerate(keys)}
    return GangNetwork(endpoints, endpoints[master])


def pytorch(workers: int, **spec: Any) -> dict[str, Any]:
    return stored(
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": {"name": "pt"},
            "spec": {
                "pytorchReplicaSpecs": {
                    "Master": replica("pytorch", "pass"),
                    "Worker": replica("pytorch", "pass", workers),
                },
                **spec,
            },
        }
    )


def test_pytorch_env() -> None:
    job = pytorch(2, nprocPerNode="2")
    net = net_for([("Master", 0), ("Worker", 0), ("Worker", 1)], ("Master", 0))
    env = pytorch_env(job, "Worker", 1, net)
    assert env == {
        "PYTHONUNBUFFERED": "1",
        "MASTER_PORT": "30000",
        "PET_MASTER_PORT": "30000",
        "MASTER_ADDR": "127.0.0.1",
        "PET_MASTER_ADDR": "127.0.0.1",
        "WORLD_SIZE": "6",
        "RANK": "2",
        "PET_NODE_RANK": "2",
        "PET_NPROC_PER_NODE": "2",
        "PET_NNODES": "3",
    }
    assert pytorch_env(pytorch(1), "Master", 0, net)["RANK"] == "0"
    assert pytorch_env(pytorch(1), "Master", 0, net)["WORLD_SIZE"] == "2"  # nproc "auto" -> x1


def test_pytorch_elastic_env() -> None:
    job = stored(
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": {"name": "el"},
            "spec": {
                "elasticPolicy": {
                    "minReplicas": 1,
                    "maxReplicas": 3,
                    "maxRestarts": 2,
                    "rdzvId": "abc",
                    "rdzvConf": [{"key": "timeout", "value": "60"}, {"key": "x", "value": "y"}],
                },
                "pytorchReplicaSpecs": {"Worker": replica("pytorch", "pass", 2)},
            },
        }
    )
    net = net_for([("Worker", 0), ("Worker", 1)], ("Worker", 0))
    env = pytorch_env(job, "Worker", 1, net)
    assert env["PET_NNODES"] == "1:3"
    assert env["PET_RDZV_ENDPOINT"] == "127.0.0.1:30000"
    assert env["PET_RDZV_BACKEND"] == "c10d"
    assert env["PET_MAX_RESTARTS"] == "2" and env["PET_RDZV_ID"] == "abc"
    assert env["PET_RDZV_CONF"] == "timeout=60,x=y"
    assert "MASTER_ADDR" not in env and "RANK" not in env


def tfjob(**replicas: int) -> dict[str, Any]:
    return stored(
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "TFJob",
            "metadata": {"name": "tf"},
            "spec": {
                "tfReplicaSpecs": {t: replica("tensorflow", "pass", n) for t, n in replicas.items()}
            },
        }
    )


def test_tf_config() -> None:
    job = tfjob(Chief=1, PS=1, Worker=2)
    keys = [("Chief", 0), ("PS", 0), ("Worker", 0), ("Worker", 1)]
    net = net_for(keys, ("Chief", 0))
    config = json.loads(tf_config(job, "Worker", 1, net) or "")
    assert config == {
        "cluster": {
            "chief": ["127.0.0.1:30000"],
            "ps": ["127.0.0.1:30001"],
            "worker": ["127.0.0.1:30002", "127.0.0.1:30003"],
        },
        "task": {"type": "worker", "index": 1},
        "environment": "cloud",
    }
    assert tf_config(tfjob(Worker=1), "Worker", 0, net_for([("Worker", 0)], ("Worker", 0))) is None
    job["spec"]["enableDynamicWorker"] = True
    sparse = json.loads(tf_config(job, "Worker", 1, net) or "")
    assert sparse["cluster"] == {"worker": {"1": "127.0.0.1:30003"}, "ps": ["127.0.0.1:30001"]}


def test_xgboost_env_and_shared_worker_port() -> None:
    job = stored(
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "XGBoostJob",
            "metadata": {"name": "x"},
            "spec": {
                "xgbReplicaSpecs": {
                    "Master": replica("xgboost", "pass"),
                    "Worker": replica("xgboost", "pass", 2),
                }
            },
        }
    )
    net = plan_v1_network(job)
    env = xgboost_env(job, "Worker", 1, net)
    assert env["RANK"] == "2" and env["WORLD_SIZE"] == "3"
    assert env["MASTER_ADDR"] == "127.0.0.1" and env["MASTER_PORT"] == str(net.master.port)
    assert env["WORKER_ADDRS"] == "127.0.1.1,127.0.1.2"
    assert env["WORKER_PORT"] == str(net.of("Worker", 0).port) == str(net.of("Worker", 1).port)
    assert env["PYTHONUNBUFFERED"] == "1"


def test_free_ports_are_distinct() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20


def test_plan_v1_process_specs(tmp_path: Path) -> None:
    job = pytorch(1)
    net = plan_v1_network(job)
    members = plan_v1(job, 3, net, {"flowyard.io/uid": job["metadata"]["uid"]}, 12.5)
    assert [(m.rtype, m.index) for m in members] == [("Master", 0), ("Worker", 0)]
    spec = members[1].spec
    assert spec.name.endswith(".3.worker-0") and spec.deadline_seconds == 12.5
    assert spec.labels["training.kubeflow.org/replica-type"] == "worker"
    assert spec.env["HOSTNAME"] == "pt-worker-0" and spec.env["RANK"] == "1"
    assert spec.log_path.endswith("logs/default/pytorchjobs/pt/pt-worker-0.log")
    assert spec.argv[1:] == ["-c", "pass"]


def test_mpi_launcher_files_and_agent(tmp_path: Path) -> None:
    files = mpi.write_launcher_files(tmp_path, workers=2, slots_per_worker=3)
    assert files["hostfile"].read_text() == "127.0.2.1 slots=3\n127.0.2.2 slots=3\n"
    env = mpi.launcher_env(files, 3)
    assert env["OMPI_MCA_orte_default_hostfile"] == str(files["hostfile"])
    # The agent is called as "<agent> <host> <command...>" and runs the command here.
    out = subprocess.run(
        [str(files["agent"]), "127.0.2.1", "echo", "hello", "$((1+2))"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert out.stdout.strip() == "hello 3"


def test_trainjob_torch_env() -> None:
    job = {"metadata": {"name": "t"}, "spec": {"trainer": {}}}
    net = GangNetwork({("node", 0): Endpoint("127.0.0.1", 4000)}, Endpoint("127.0.0.1", 4000))
    env = torch_env(job, 3, 2, Resources(cpu=4), net)
    assert env == {
        "PET_NNODES": "3",
        "PET_NPROC_PER_NODE": "4",
        "PET_NODE_RANK": "2",
        "PET_MASTER_ADDR": "127.0.0.1",
        "PET_MASTER_PORT": "4000",
    }
    assert torch_env(job, 1, 0, Resources(), net)["PET_NPROC_PER_NODE"] == "1"
    assert torch_env(job, 1, 0, Resources(gpu=2), net)["PET_NPROC_PER_NODE"] == "auto"
    job["spec"]["trainer"]["numProcPerNode"] = 2
    assert torch_env(job, 1, 0, Resources(cpu=8), net)["PET_NPROC_PER_NODE"] == "2"
