"""Training jobs end to end: a real ``flowyard up`` server, its controllers and executor, driven
through the CLI, raw HTTP and ``flowyard.Client`` (one server for the module)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from flowyard.resources.conditions import get_condition
from tests.support.server import RunningServer

from .helpers import REFERENCE, build_wheel, replica
from .test_runner import TF_CHECK, XGB_MASTER, XGB_WORKER

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("training-server")).start()
    yield running
    running.stop()


def v1job(kind: str, name: str, replicas: dict[str, Any], **run_policy: Any) -> dict[str, Any]:
    key = {"PyTorchJob": "pytorchReplicaSpecs", "TFJob": "tfReplicaSpecs"}.get(kind)
    key = key or {"XGBoostJob": "xgbReplicaSpecs", "MPIJob": "mpiReplicaSpecs"}[kind]
    spec: dict[str, Any] = {key: replicas}
    if run_policy:
        spec["runPolicy"] = run_policy
    return {"apiVersion": "kubeflow.org/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def wait(
    server: RunningServer,
    plural: str,
    name: str,
    condition: str,
    timeout: float = 120.0,
    namespace: str | None = None,
) -> dict[str, Any]:
    with server.client() as client:
        try:
            return client.wait_for_condition(
                plural, name, condition, namespace=namespace, timeout=timeout
            )
        except TimeoutError:
            raise AssertionError(
                f"{plural}/{name} never {condition}: {client.get(plural, name, namespace)}\n"
                f"{server.output()}"
            ) from None


def reasons(server: RunningServer, obj: dict[str, Any]) -> list[str]:
    """The reasons of ``obj``'s events, each as often as it happened (repeats share one Event)."""
    with server.client() as client:
        events = client.list(
            "events",
            obj["metadata"]["namespace"],
            field_selector=f"involvedObject.uid={obj['metadata']['uid']}",
        )
    return [e["reason"] for e in events for _ in range(int(e.get("count") or 1))]


def pid_gone(pid: int, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie":
            return True
        time.sleep(0.1)
    return False


# -- the upstream example and real DDP --------------------------------------------------------
def test_upstream_pytorch_example_with_cli(server: RunningServer) -> None:
    pytest.importorskip("torch")
    example = REFERENCE / "training-operator-v1/examples/pytorch_simple.yaml"
    if not example.exists():
        pytest.skip("upstream reference data not present")
    applied = server.cli("apply", "-f", str(example))
    assert applied.returncode == 0, applied.stderr
    assert "pytorchjob.kubeflow.org/pytorch-simple created" in applied.stdout
    done = wait(server, "pytorchjobs", "pytorch-simple", "Succeeded", 240, "kubeflow")
    replicas = done["status"]["replicaStatuses"]
    assert replicas["Master"]["succeeded"] == 1 and replicas["Master"]["active"] == 0
    listing = server.cli("get", "pytorchjobs", "-n", "kubeflow")
    header, row = listing.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "STATE", "AGE"], listing.stdout
    assert row.split()[:2] == ["pytorch-simple", "Succeeded"]
    logs = server.cli(
        "logs",
        "pytorchjob/pytorch-simple",
        "-n",
        "kubeflow",
        "-c",
        "pytorch-simple-worker-0",
    )
    assert logs.returncode == 0, logs.stderr
    assert "rank 1: epoch 1 loss" in logs.stdout
    assert (
        server.home / "logs/kubeflow/pytorchjobs/pytorch-simple/pytorch-simple-master-0.log"
    ).exists()
    seen = reasons(server, done)
    assert seen.count("SuccessfulCreatePod") == 2 and "PyTorchJobSucceeded" in seen


DDP = """
import json, os, sys, torch, torch.distributed as dist
dist.init_process_group("gloo")
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
assert value.item() == 3.0, value
dist.destroy_process_group()
sys.argv = ["mnist", "--epochs=2", "--samples=256",
            "--result-file=" + os.environ["OUT"] + "/result-" + os.environ["RANK"] + ".json"]
from flowyard.training.examples import mnist_ddp
mnist_ddp.main()
"""


def test_two_process_ddp_job(server: RunningServer, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    env = [{"name": "OUT", "value": str(tmp_path)}]
    job = v1job(
        "PyTorchJob",
        "ddp",
        {"Master": replica("pytorch", DDP, env=env), "Worker": replica("pytorch", DDP, env=env)},
    )
    with server.client() as client:
        client.create(job)
    wait(server, "pytorchjobs", "ddp", "Succeeded", 240)
    results = [json.loads((tmp_path / f"result-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in results] == [2, 2]
    assert results[0]["losses"] == results[1]["losses"] and len(results[0]["losses"]) == 2
    assert results[0]["checksum"] == pytest.approx(results[1]["checksum"], rel=1e-6)


# -- other frameworks through their controllers ------------------------------------------------
def test_tfjob_and_xgboostjob(server: RunningServer) -> None:
    tf = v1job(
        "TFJob",
        "tf-config",
        {"Chief": replica("tensorflow", TF_CHECK), "Worker": replica("tensorflow", TF_CHECK, 2)},
    )
    xgb = v1job(
        "XGBoostJob",
        "xgb-env",
        {"Master": replica("xgboost", XGB_MASTER), "Worker": replica("xgboost", XGB_WORKER, 2)},
    )
    with server.client() as client:
        client.create(tf)
        client.create(xgb)
    assert wait(server, "tfjobs", "tf-config", "Succeeded")["status"]["conditions"]
    done = wait(server, "xgboostjobs", "xgb-env", "Succeeded")
    assert done["status"]["replicaStatuses"]["Master"]["succeeded"] == 1


def test_mpijob_launcher_sees_hostfile(server: RunningServer) -> None:
    launcher = (
        "import os; hosts = open(os.environ['OMPI_MCA_orte_default_hostfile']).read().split('\\n');"
        "assert [h for h in hosts if h] == ['127.0.2.1 slots=2', '127.0.2.2 slots=2'], hosts"
    )
    job = v1job(
        "MPIJob",
        "mpi-hosts",
        {"Launcher": replica("mpi", launcher), "Worker": replica("mpi", "pass", 2)},
    )
    job["spec"]["slotsPerWorker"] = 2
    with server.client() as client:
        client.create(job)
    done = wait(server, "mpijobs", "mpi-hosts", "Succeeded")
    assert done["status"]["replicaStatuses"]["Launcher"]["succeeded"] == 1


def log_text(server: RunningServer, namespace: str, plural: str, name: str, pod: str) -> str:
    path = server.home / "logs" / namespace / plural / name / f"{pod}.log"
    return path.read_text() if path.exists() else ""


def test_upstream_tfjob_dist_mnist_with_cli(server: RunningServer) -> None:
    """The upstream manifest, unchanged: its image maps to the parameter-server stand-in."""
    example = REFERENCE / "training-operator-v1/examples/tfjob_dist_mnist.yaml"
    if not example.exists():
        pytest.skip("upstream reference data not present")
    applied = server.cli("apply", "-f", str(example))
    assert applied.returncode == 0, applied.stderr
    name = "dist-mnist-for-e2e-test"
    done = wait(server, "tfjobs", name, "Succeeded", 120)
    assert done["status"]["replicaStatuses"]["Chief"]["succeeded"] == 1
    chief = log_text(server, "default", "tfjobs", name, f"{name}-chief-0")
    assert "TF_CONFIG task chief:0, cluster ['chief', 'ps', 'worker']" in chief, chief
    final = [line for line in chief.splitlines() if "final loss" in line]
    assert final and "3 trainers" in final[0], chief
    end = time.monotonic() + 15  # the ps task prints its tally when the last trainer is done
    while "updates (" not in (ps := log_text(server, "default", "tfjobs", name, f"{name}-ps-0")):
        assert time.monotonic() < end, ps
        time.sleep(0.1)
    assert "600 updates (chief:0=200, worker:0=200, worker:1=200)" in ps, ps
    for index in (0, 1):
        worker = log_text(server, "default", "tfjobs", name, f"{name}-worker-{index}")
        assert f"worker:{index}: step 199 loss" in worker, worker


def test_upstream_tfjob_simple_with_cli(server: RunningServer) -> None:
    example = REFERENCE / "training-operator-v1/examples/tfjob_simple.yaml"
    if not example.exists():
        pytest.skip("upstream reference data not present")
    applied = server.cli("apply", "-f", str(example))
    assert applied.returncode == 0, applied.stderr
    done = wait(server, "tfjobs", "tfjob-simple", "Succeeded", 120, "kubeflow")
    assert done["status"]["replicaStatuses"]["Worker"]["succeeded"] == 2
    log = log_text(server, "kubeflow", "tfjobs", "tfjob-simple", "tfjob-simple-worker-1")
    assert "TF_CONFIG task worker:1" in log and "local: final loss" in log, log


MPI_RANKS = (
    "import os; e = os.environ; print('mpi rank', e['OMPI_COMM_WORLD_RANK'], 'of',"
    " e['OMPI_COMM_WORLD_SIZE'], 'local size', e['OMPI_COMM_WORLD_LOCAL_SIZE'], flush=True)"
)


def test_mpijob_runs_real_mpirun(server: RunningServer, mpirun: str) -> None:
    """The launcher runs Open MPI's mpirun; its daemons start through the rsh agent, one per
    worker host (local size 1 on each), and the ranks print what Open MPI gave them."""
    launcher = {
        "replicas": 1,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "mpi",
                        "image": "local",
                        "command": ["mpirun", "-np", "2", "python", "-c", MPI_RANKS],
                    }
                ]
            }
        },
    }
    job = v1job("MPIJob", "mpi-real", {"Launcher": launcher, "Worker": replica("mpi", "pass", 2)})
    with server.client() as client:
        client.create(job)
    done = wait(server, "mpijobs", "mpi-real", "Succeeded", 120)
    assert done["status"]["replicaStatuses"]["Launcher"]["succeeded"] == 1
    log = log_text(server, "default", "mpijobs", "mpi-real", "mpi-real-launcher-0")
    ranks = sorted(line for line in log.splitlines() if line.startswith("mpi rank"))
    assert ranks == ["mpi rank 0 of 2 local size 1", "mpi rank 1 of 2 local size 1"], log


def use_package(tag: str) -> None:
    import os

    import flowyard_trainpkg

    print(f"node {os.environ['JOB_COMPLETION_INDEX']} {tag}:{flowyard_trainpkg.VALUE}", flush=True)


def test_trainer_client_installs_a_missing_package_once(
    server: RunningServer, tmp_path: Path
) -> None:
    """A package that is not installed: installed once into the server's shared cache (one
    install for two nodes and two jobs), never a venv per job. A local wheel: no index needed."""
    from flowyard.training.api import TrainerClient, job_status

    wheel = build_wheel(tmp_path)
    with server.client() as client:
        trainer = TrainerClient(client)
        logs = []
        for tag in ("first", "second"):
            name = trainer.train(
                func=use_package,
                func_args={"tag": tag},
                num_nodes=2,
                packages_to_install=[str(wheel)],
                torch=False,
            )
            job = trainer.wait_for_job_status(name, {"Complete", "Failed"}, timeout=180)
            text = "".join("".join(trainer.get_job_logs(name, step=f"node-{i}")) for i in (0, 1))
            assert job_status(job) == "Complete", job
            assert f"node 0 {tag}:train-ok" in text and f"node 1 {tag}:train-ok" in text, text
            logs.append(text)
    assert logs[0].count("flowyard: installing") == 1, logs[0]
    assert "flowyard: installing" not in logs[1], logs[1]
    cache = [p for p in (server.home / "training" / "packages").iterdir() if p.is_dir()]
    assert len(cache) == 1 and (cache[0] / ".installed").exists()
    assert (cache[0] / "flowyard_trainpkg" / "__init__.py").exists()


# -- restart policies and deadlines ------------------------------------------------------------
MASTER_WAITS = """
import os, pathlib, time
out = pathlib.Path(os.environ["OUT"])
(out / "master.pid").write_text(str(os.getpid()))
end = time.time() + 120
while not (out / "worker-done").exists():
    assert time.time() < end, "the worker never finished"
    time.sleep(0.1)
"""
WORKER_137_ONCE = """
import os, pathlib, sys
import time
out = pathlib.Path(os.environ["OUT"])
if not (out / "crashed").exists():
    end = time.time() + 60
    while not (out / "master.pid").exists() and time.time() < end:
        time.sleep(0.05)   # crash only once the master runs, so it has something to stop
    (out / "crashed").write_text("x")
    sys.exit(137)   # as a container killed by SIGKILL (the OOM killer) reports it
(out / "worker-done").write_text("x")
"""


def crash_job(name: str, out: Path, policy: str) -> dict[str, Any]:
    env = [{"name": "OUT", "value": str(out)}]
    return v1job(
        "PyTorchJob",
        name,
        {
            "Master": replica("pytorch", MASTER_WAITS, policy=policy, env=env),
            "Worker": replica("pytorch", WORKER_137_ONCE, policy=policy, env=env),
        },
        backoffLimit=2,
    )


def test_exit_137_restarts_the_gang_under_exit_code(server: RunningServer, tmp_path: Path) -> None:
    with server.client() as client:
        client.create(crash_job("crash-retry", tmp_path, "ExitCode"))
    done = wait(server, "pytorchjobs", "crash-retry", "Succeeded")
    assert done["status"]["flowyard"]["restarts"] == 1
    # As upstream, Running replaced the Restarting condition once the new gang ran.
    assert get_condition(done, "Restarting") is None
    seen = reasons(server, done)
    assert "PyTorchJobRestarting" in seen and seen.count("SuccessfulCreatePod") == 4


def test_exit_137_fails_under_never_and_stops_the_master(
    server: RunningServer, tmp_path: Path
) -> None:
    with server.client() as client:
        client.create(crash_job("crash-never", tmp_path, "Never"))
    failed = wait(server, "pytorchjobs", "crash-never", "Failed")
    assert failed["status"]["flowyard"]["restarts"] == 0
    assert "PyTorchJobFailed" in reasons(server, failed)
    assert pid_gone(int((tmp_path / "master.pid").read_text())), "the master was left running"


def test_active_deadline_fails_a_hung_job(server: RunningServer, tmp_path: Path) -> None:
    hang = (
        "import os, time; open(os.environ['OUT'] + '/' + os.environ['HOSTNAME'], 'w')"
        ".write(str(os.getpid())); time.sleep(300)"
    )
    env = [{"name": "OUT", "value": str(tmp_path)}]
    job = v1job(
        "PyTorchJob",
        "hung",
        {"Master": replica("pytorch", hang, env=env), "Worker": replica("pytorch", hang, env=env)},
        activeDeadlineSeconds=3,
    )
    with server.client() as client:
        client.create(job)
    failed = wait(server, "pytorchjobs", "hung", "Failed", 60)
    assert "deadline" in get_condition(failed, "Failed")["message"].lower()
    for pidfile in ("hung-master-0", "hung-worker-0"):
        assert pid_gone(int((tmp_path / pidfile).read_text())), pidfile


def test_deleting_a_running_job_stops_its_replicas(server: RunningServer, tmp_path: Path) -> None:
    hold = (
        "import os, time; open(os.environ['OUT'] + '/' + os.environ['HOSTNAME'], 'w')"
        ".write(str(os.getpid())); time.sleep(300)"
    )
    env = [{"name": "OUT", "value": str(tmp_path)}]
    job = v1job(
        "PyTorchJob",
        "doomed",
        {
            "Master": replica("pytorch", hold, env=env),
            "Worker": replica("pytorch", hold, 2, env=env),
        },
    )
    with server.client() as client:
        client.create(job)
        wait(server, "pytorchjobs", "doomed", "Running", 60)
        pidfiles = [tmp_path / f"doomed-{r}" for r in ("master-0", "worker-0", "worker-1")]
        end = time.monotonic() + 30
        while not all(p.exists() for p in pidfiles) and time.monotonic() < end:
            time.sleep(0.1)
        client.delete("pytorchjobs", "doomed")
    for pidfile in pidfiles:
        assert pid_gone(int(pidfile.read_text())), f"{pidfile.name} kept running after delete"


# -- bad input at apply time -------------------------------------------------------------------
def _pytorch(**worker: Any) -> dict[str, Any]:
    base = {
        "replicas": 1,
        "template": {
            "spec": {
                "containers": [
                    {"name": "pytorch", "image": "local", "command": ["python3", "-c", "pass"]}
                ]
            }
        },
    }
    base.update(worker)
    return v1job("PyTorchJob", "bad", {"Master": base, "Worker": dict(base)})


def _no_command() -> dict[str, Any]:
    job = _pytorch()
    del job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["command"]
    return job


def _unknown_type() -> dict[str, Any]:
    job = _pytorch()
    job["spec"]["pytorchReplicaSpecs"]["Launcher"] = job["spec"]["pytorchReplicaSpecs"]["Worker"]
    return job


def _trainjob(**trainer: Any) -> dict[str, Any]:
    runtime = trainer.pop("runtime", "torch-distributed")
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "bad"},
        "spec": {
            "runtimeRef": {"name": runtime},
            "trainer": {"command": ["python3", "-c", "pass"], **trainer},
        },
    }


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (_pytorch(replicas=-1), "spec.pytorchReplicaSpecs[Worker].replicas"),
        (_unknown_type(), "spec.pytorchReplicaSpecs"),
        (_no_command(), "spec.pytorchReplicaSpecs[Worker].template.spec.containers[0].command"),
        (_trainjob(numNodes=10_000), "spec.trainer.numNodes"),
        (_trainjob(runtime="no-such-runtime"), "spec.runtimeRef.name"),
    ],
    ids=[
        "negative-replicas",
        "unknown-replica-type",
        "missing-command",
        "too-many-nodes",
        "missing-runtime",
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    server: RunningServer, obj: dict[str, Any], field: str
) -> None:
    plural = "trainjobs" if obj["kind"] == "TrainJob" else "pytorchjobs"
    group = obj["apiVersion"]
    started = time.monotonic()
    response = httpx.post(
        f"{server.url}/apis/{group}/namespaces/default/{plural}",
        json=obj,
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    assert time.monotonic() - started < 10  # an answer, not a hang
    assert response.status_code == 422, response.text
    body = response.json()
    fields = [c["field"] for c in body["details"]["causes"]]
    assert any(f.startswith(field) for f in fields), (fields, body["message"])


def test_bad_input_through_cli_apply(server: RunningServer) -> None:
    import yaml

    result = server.cli("apply", "-f", "-", stdin=yaml.safe_dump(_pytorch(replicas=-1)))
    assert result.returncode == 1
    assert "spec.pytorchReplicaSpecs[Worker].replicas" in result.stderr


# -- the TrainerClient-style API ---------------------------------------------------------------
def ddp_steps(steps: int, lr: float, out_dir: str) -> None:
    import json
    import os

    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    data = torch.Generator().manual_seed(rank)
    losses = []
    for step in range(steps):
        x = torch.randn(32, 4, generator=data)
        loss = torch.nn.functional.mse_loss(model(x), x.sum(1, keepdim=True))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        losses.append(mean.item() / world)
        print(f"rank {rank} step {step} loss {losses[-1]:.5f}", flush=True)
    weights = [float(p.detach().sum()) for p in model.parameters()]
    with open(os.path.join(out_dir, f"rank-{rank}.json"), "w") as out:
        json.dump(
            {
                "world": world,
                "losses": losses,
                "weights": weights,
                "types": [type(steps).__name__, type(lr).__name__],
            },
            out,
        )
    dist.destroy_process_group()


def test_trainer_client_end_to_end(server: RunningServer, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from flowyard.errors import NotFoundError
    from flowyard.training.api import TrainerClient

    with server.client() as client:
        trainer = TrainerClient(client)
        assert "torch-distributed" in [r["metadata"]["name"] for r in trainer.list_runtimes()]
        name = trainer.train(
            func=ddp_steps,
            func_args={"steps": 5, "lr": 0.05, "out_dir": str(tmp_path)},
            num_nodes=2,
            resources_per_node={"cpu": 1},
        )
        streamed = "".join(trainer.get_job_logs(name, follow=True))
        job = trainer.wait_for_job_status(name, {"Complete"}, timeout=180)
        assert name in [j["metadata"]["name"] for j in trainer.list_jobs()]
        assert trainer.get_job(name)["status"]["jobsStatus"][0]["succeeded"] == 2
        assert "rank 0 step 4 loss" in streamed, streamed
        assert "rank 1 step 4" in "".join(trainer.get_job_logs(name, step="node-1"))
        assert "SuccessfulCreatePod" in reasons(server, job)
        ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
        assert ranks[0]["world"] == ranks[1]["world"] == 2
        assert ranks[0]["types"] == ["int", "float"]
        assert ranks[0]["losses"] == ranks[1]["losses"]
        assert ranks[0]["losses"][-1] < ranks[0]["losses"][0]
        assert ranks[0]["weights"] == pytest.approx(ranks[1]["weights"])
        trainer.delete_job(name)
        with pytest.raises(NotFoundError):
            trainer.get_job(name)


# -- a control-plane restart adopts the running replicas ----------------------------------------
HOLD = """
import os, pathlib, time
out = pathlib.Path(os.environ["OUT"])
(out / (os.environ["HOSTNAME"] + ".pid")).write_text(str(os.getpid()))
end = time.time() + 120
while not (out / "go").exists():
    assert time.time() < end
    time.sleep(0.1)
"""


def test_restart_adopts_running_replicas(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    env = [{"name": "OUT", "value": str(out)}]
    job = v1job(
        "PyTorchJob",
        "survivor",
        {"Master": replica("pytorch", HOLD, env=env), "Worker": replica("pytorch", HOLD, env=env)},
    )
    first = RunningServer(tmp_path / "home").start()
    try:
        with first.client() as client:
            client.create(job)
        wait(first, "pytorchjobs", "survivor", "Running")
        pidfiles = [out / "survivor-master-0.pid", out / "survivor-worker-0.pid"]
        end = time.monotonic() + 30
        while not all(p.exists() for p in pidfiles) and time.monotonic() < end:
            time.sleep(0.1)
        pids = [int(p.read_text()) for p in pidfiles]
        first.kill9()
        assert all(psutil.pid_exists(pid) for pid in pids)
    finally:
        first.stop()
    second = RunningServer(tmp_path / "home", port=first.port).start()
    try:
        running = wait(second, "pytorchjobs", "survivor", "Running")
        assert get_condition(running, "Running")["status"] == "True"
        (out / "go").write_text("x")
        done = wait(second, "pytorchjobs", "survivor", "Succeeded")
        assert done["status"]["flowyard"] | {"network": None} == {
            "attempt": 1,
            "restarts": 0,
            "network": None,
        }
        assert [int(p.read_text()) for p in pidfiles] == pids  # not relaunched
        assert reasons(second, done).count("SuccessfulCreatePod") == 2
    finally:
        second.stop()
