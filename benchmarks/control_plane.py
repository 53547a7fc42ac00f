"""Control-plane benchmark: cold start, idle memory, API latency, 1000 trivial Jobs.

Run: ``python benchmarks/control_plane.py [--jobs 1000] [--json out.json]``

Every figure is measured against a real ``flowyard up`` subprocess with a fresh FLOWYARD_HOME on
this machine. There is no upstream run side by side: a Kubernetes API server with the Job
controller (kind, minikube) needs a container runtime, which this machine does not have; the
published figures for a default Kubeflow install (tens of pods, ~12 GiB) are quoted in the
report for scale only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, FLOWYARD_HOME=str(home), FLOWYARD_URL=self.url)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flowyard.cli.main", "up", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.ready_after = self._wait_ready()
        token = json.loads((home / "credentials").read_text())["token"]
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def _wait_ready(self) -> float:
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=0.5).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
        raise RuntimeError("server did not become ready")

    def rss_mb(self) -> float:
        proc = psutil.Process(self.proc.pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(15)


def job(name: str, *, suspend: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "suspend": suspend,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                }
            },
        },
    }


JOBS = "/apis/batch/v1/namespaces/default/jobs"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def bench_start(tmp: Path, runs: int) -> dict[str, float]:
    cold = []
    for i in range(runs):
        server = Server(tmp / f"start-{i}")
        cold.append(server.ready_after)
        server.stop()
    warm_server = Server(tmp / "start-0")  # existing home: migrations already applied
    warm = warm_server.ready_after
    warm_server.stop()
    return {"cold_start_s_median": statistics.median(cold), "warm_start_s": warm}


def bench_latency(server: Server, n: int) -> dict[str, float]:
    create, get = [], []
    for i in range(n):
        t0 = time.perf_counter()
        server.http.post(JOBS, json=job(f"lat-{i}", suspend=True)).raise_for_status()
        create.append(time.perf_counter() - t0)
    for i in range(n):
        t0 = time.perf_counter()
        server.http.get(f"{JOBS}/lat-{i % n}").raise_for_status()
        get.append(time.perf_counter() - t0)
    return {
        "create_p50_ms": 1000 * percentile(create, 0.5),
        "create_p99_ms": 1000 * percentile(create, 0.99),
        "get_p50_ms": 1000 * percentile(get, 0.5),
        "get_p99_ms": 1000 * percentile(get, 0.99),
    }


def bench_jobs(server: Server, count: int) -> dict[str, float]:
    t0 = time.perf_counter()
    for i in range(count):
        server.http.post(JOBS, json=job(f"true-{i}")).raise_for_status()
    applied = time.perf_counter() - t0
    peak = server.rss_mb()
    while True:
        items = server.http.get(JOBS, params={"labelSelector": ""}).json()["items"]
        done = sum(
            1
            for j in items
            if j["metadata"]["name"].startswith("true-")
            and any(
                c["type"] == "Complete" and c["status"] == "True"
                for c in (j.get("status") or {}).get("conditions", [])
            )
        )
        peak = max(peak, server.rss_mb())
        if done >= count:
            break
        if time.perf_counter() - t0 > 900:
            raise RuntimeError(f"only {done}/{count} jobs completed in 15 minutes")
        time.sleep(0.5)
    total = time.perf_counter() - t0
    return {
        "jobs": count,
        "apply_all_s": applied,
        "apply_to_all_complete_s": total,
        "jobs_per_s": count / total,
        "peak_rss_mb": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency-requests", type=int, default=300)
    parser.add_argument("--start-runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        results.update(bench_start(tmp, args.start_runs))
        server = Server(tmp / "main")
        time.sleep(5)
        results["idle_rss_mb"] = server.rss_mb()
        results.update(bench_latency(server, args.latency_requests))
        results.update(bench_jobs(server, args.jobs))
        server.stop()
    width = max(len(k) for k in results)
    print(f"{'metric':<{width}}  value")
    for key, value in results.items():
        print(
            f"{key:<{width}}  {value:.3f}"
            if isinstance(value, float)
            else f"{key:<{width}}  {value}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
