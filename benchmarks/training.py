"""Training launch latency (issue 6, item 8): time from submitting a 2-node DDP job to its first
training step, flowyard vs the Kubeflow SDK's local process backend, on the same function.

* flowyard: a running ``flowyard up`` (started once, like a cluster that is already there);
  ``flowyard.training.api.TrainerClient.train(func=train_ddp, num_nodes=2)`` submits a TrainJob
  on the shipped ``torch-distributed`` runtime: 2 node processes, each ``torchrun`` with one
  worker, gloo rendezvous on loopback. Also measured once "cold": from starting ``flowyard up``
  to the first step (server start included).
* Kubeflow SDK (``kubeflow`` package, pinned below, in its own virtualenv under
  ``benchmarks/results/`` because it pins its own ``kubernetes`` client):
  ``TrainerClient(backend_config=LocalProcessBackendConfig()).train(runtime="torch-distributed",
  trainer=CustomTrainer(func=train_ddp, packages_to_install=["torch==<ours>"]))``. That backend
  creates a fresh virtualenv per job (without the host's packages, so torch must be installed
  into it: ``packages_to_install`` is required for a torch function) and runs one ``torchrun``;
  it ignores ``num_nodes`` (always one node), so the same world size of 2 is requested with
  ``PET_NPROC_PER_NODE=2`` (torchrun reads its options from ``PET_*``): 2 processes, 1 node.

The timer starts just before the ``train()`` call and stops at the wall-clock time rank 0
writes after its first optimizer step (same machine, same clock). Also reported: submit to job
end. Run: ``python benchmarks/training.py [--repeat N] [--kubeflow-repeat N] [--skip-kubeflow]``
(needs the ``training`` extra: torch).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
KUBEFLOW_SDK = "kubeflow==0.5.0"
VENV = ROOT / "benchmarks" / "results" / "kubeflow-sdk-venv"
STEPS = 20


def train_ddp() -> None:
    """The benchmarked function: DDP on a small MLP, gloo; rank 0 records its first step."""
    import json
    import os
    import time

    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(
        torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    data = torch.Generator().manual_seed(rank)
    out = os.environ["BENCH_OUT"]
    for step in range(int(os.environ.get("BENCH_STEPS", "20"))):
        x = torch.randn(64, 32, generator=data)
        loss = torch.nn.functional.mse_loss(model(x), x.sum(1, keepdim=True))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == 0 and rank == 0:
            with open(os.path.join(out, "first-step.json"), "w") as handle:
                json.dump({"time": time.time(), "world": world}, handle)
        print(f"rank {rank} step {step} loss {loss.item():.4f}", flush=True)
    dist.destroy_process_group()


# -- flowyard ----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``flowyard up`` on a free port with its own FLOWYARD_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, FLOWYARD_HOME=str(home), FLOWYARD_URL=self.url)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flowyard.cli.main", "up", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
        else:
            self.stop()
            raise RuntimeError(f"flowyard did not become ready (exit code {self.proc.poll()})")
        self.token = json.loads((home / "credentials").read_text())["token"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


def flowyard_run(server: Server, out: Path) -> dict[str, float]:
    from flowyard.client import Client
    from flowyard.training.api import TrainerClient

    with Client(server.url, server.token, timeout=60) as client:
        trainer = TrainerClient(client)
        started = time.time()
        name = trainer.train(
            func=train_ddp,
            num_nodes=2,
            resources_per_node={"cpu": 1},
            env={"BENCH_OUT": str(out), "BENCH_STEPS": str(STEPS)},
        )
        trainer.wait_for_job_status(name, {"Complete"}, timeout=600, polling_interval=0.2)
        ended = time.time()
        launched = _launched(server.home, name)  # before delete_job drops the records
        trainer.delete_job(name)
    result = _result(out, started, ended)
    result["launch"] = launched - started
    return result


def _launched(home: Path, job: str) -> float:
    """When the last node process of ``job`` started (the executor's records): what flowyard
    itself adds before torchrun and the function run."""
    starts = [
        json.loads(path.read_text()).get("started_at") or 0.0
        for path in (home / "executor").rglob(f"trainjob.default.{job}.*.json")
    ]
    if not starts:
        raise RuntimeError(f"no executor records for {job} under {home}")
    return max(starts)


def flowyard_cold(tmp: Path) -> dict[str, float]:
    """Start the control plane, then submit: the first-step latency from nothing running."""
    out = tmp / "cold-out"
    out.mkdir()
    started = time.time()
    server = Server(tmp / "cold-home")
    try:
        result = flowyard_run(server, out)
    finally:
        server.stop()
    result["first_step"] += result["submitted"] - started
    return result


def _result(out: Path, started: float, ended: float) -> dict[str, float]:
    first = json.loads((out / "first-step.json").read_text())
    assert first["world"] == 2, first
    return {"submitted": started, "first_step": first["time"] - started, "total": ended - started}


# -- Kubeflow SDK ------------------------------------------------------------------------------
KUBEFLOW_DRIVER = """
import json, os, sys, time
from kubeflow.trainer import CustomTrainer, LocalProcessBackendConfig, TrainerClient

{source}

out, torch_pin, steps = sys.argv[1], sys.argv[2], sys.argv[3]
client = TrainerClient(backend_config=LocalProcessBackendConfig())
env = dict(os.environ, BENCH_OUT=out, BENCH_STEPS=steps, PET_NPROC_PER_NODE="2")
started = time.time()
name = client.train(
    runtime="torch-distributed",
    trainer=CustomTrainer(func=train_ddp, num_nodes=2, packages_to_install=[torch_pin], env=env),
)
job = client.wait_for_job_status(name, status={{"Complete", "Failed"}}, timeout=1800,
                                 polling_interval=1)
ended = time.time()
logs = "".join(client.get_job_logs(name))
report = {{"started": started, "ended": ended, "status": job.status, "logs": logs[-3000:]}}
print(json.dumps(report))
"""


def kubeflow_python() -> Path:
    """The Kubeflow SDK's virtualenv python, created once (uv if present, else pip)."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "from kubeflow.trainer import LocalProcessBackendConfig"]
    if python.exists() and subprocess.run(check, capture_output=True, timeout=120).returncode == 0:
        return python
    print(f"creating {VENV} with {KUBEFLOW_SDK} ...", file=sys.stderr)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", str(VENV), "--python", sys.executable], check=True, timeout=300)
        install = [uv, "pip", "install", "--python", str(python), KUBEFLOW_SDK]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
        install = [str(python), "-m", "pip", "install", KUBEFLOW_SDK]
    subprocess.run(install, check=True, timeout=900)
    subprocess.run(check, check=True, timeout=120)
    return python


def kubeflow_run(python: Path, out: Path, torch_pin: str) -> dict[str, float]:
    script = out.parent / f"{out.name}-driver.py"
    script.write_text(KUBEFLOW_DRIVER.format(source=inspect.getsource(train_ddp)))
    done = subprocess.run(
        [str(python), str(script), str(out), torch_pin, str(STEPS)],
        capture_output=True,
        text=True,
        timeout=1900,
        cwd=out.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"the Kubeflow SDK run failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["status"] != "Complete" or not (out / "first-step.json").exists():
        raise RuntimeError(f"the Kubeflow SDK job ended {report['status']}:\n{report['logs']}")
    return _result(out, report["started"], report["ended"])


# -- report ------------------------------------------------------------------------------------
def summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    first = [r["first_step"] for r in runs]
    return {
        "runs": len(runs),
        "first_step_median_s": statistics.median(first),
        "first_step_min_s": min(first),
        "first_step_max_s": max(first),
        "total_median_s": statistics.median(r["total"] for r in runs),
        **(
            {"launch_median_s": statistics.median(r["launch"] for r in runs)}
            if all("launch" in r for r in runs)
            else {}
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="flowyard runs (warm server)")
    parser.add_argument("--kubeflow-repeat", type=int, default=2, help="Kubeflow SDK runs")
    parser.add_argument("--skip-kubeflow", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    results: dict[str, Any] = {"machine_cpus": os.cpu_count(), "steps": STEPS}
    with tempfile.TemporaryDirectory(prefix="flowyard-bench-training-") as raw:
        tmp = Path(raw)
        results["flowyard_cold"] = flowyard_cold(tmp)
        server = Server(tmp / "home")
        try:
            runs = []
            for i in range(args.repeat):
                out = tmp / f"flowyard-{i}"
                out.mkdir()
                runs.append(flowyard_run(server, out))
        finally:
            server.stop()
        results["flowyard"] = summary(runs)
        if not args.skip_kubeflow:
            python = kubeflow_python()
            kf_runs = []
            for i in range(args.kubeflow_repeat):
                out = tmp / f"kubeflow-{i}"
                out.mkdir()
                kf_runs.append(kubeflow_run(python, out, torch_pin))
            results["kubeflow_sdk"] = {"package": KUBEFLOW_SDK, **summary(kf_runs)}
    print(json.dumps(results, indent=2))
    fy = results["flowyard"]["first_step_median_s"]
    print("\napply -> first training step, 2-process DDP (gloo, CPU), median of runs:")
    print(f"  flowyard (server running)     {fy:8.2f} s")
    print(f"  flowyard (incl. server start) {results['flowyard_cold']['first_step']:8.2f} s")
    launch = results["flowyard"]["launch_median_s"]
    print(f"    of which submit -> node processes started {launch:8.2f} s")
    if "kubeflow_sdk" in results:
        kf = results["kubeflow_sdk"]["first_step_median_s"]
        print(f"  Kubeflow SDK local process    {kf:8.2f} s")
        print(f"  ratio Kubeflow SDK / flowyard {kf / fy:8.1f} x")
    out_file = ROOT / "benchmarks" / "results" / "training.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
