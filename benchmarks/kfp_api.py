"""KFP API benchmark: ``kfp.Client.list_runs`` over 10,000 stored runs, and the per-call cost
of creating 100 runs back to back through ``kfp.Client``.

    python benchmarks/kfp_api.py [--runs 10000] [--pages 50] [--creates 100]

The stored runs are written straight into a fresh FLOWYARD_HOME's store (finished, with a
realistic status of three tasks) before the server starts; the server is a real ``flowyard up``.
Prints the cold first page (the API builds its in-memory index at startup; the first call
waits for it if it is not done), then warm page latencies (median / p95) for the default sort,
``created_at desc``, a filtered list and a next page, each measured twice: through
``kfp.Client`` and with plain ``httpx`` (the server's share: the difference is the kfp client's
model deserialization). The load average is printed with the numbers: timings on a busy
machine are not comparable to a quiet one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.server import RunningServer

from flowyard.kfp_api import register_kinds
from flowyard.kfp_api.names import CREATED_AT
from flowyard.store import SqlStore

SPEC: dict[str, Any] = {
    "pipelineInfo": {"name": "bench"},
    "root": {"dag": {"tasks": {}}},
    "schemaVersion": "2.1.0",
    "sdkVersion": "kfp-2.17.0",
}


def _run(i: int) -> dict[str, Any]:
    tasks = [
        {
            "taskId": f"step-{k}",
            "displayName": f"step-{k}",
            "state": "SUCCEEDED",
            "inputs": {"parameters": {"a": i, "b": k}},
            "outputs": {"parameters": {"Output": i + k}},
            "startTime": "2024-01-01T00:00:00Z",
            "endTime": "2024-01-01T00:00:01Z",
        }
        for k in range(3)
    ]
    return {
        "apiVersion": "pipelines.kubeflow.org/v2beta1",
        "kind": "Run",
        "metadata": {
            "name": f"bench-run-{i:05d}",
            "namespace": "default",
            "finalizers": ["pipelines.kubeflow.org/run-cleanup"],
            "annotations": {CREATED_AT: f"{1_700_000_000 + i:.6f}"},
        },
        "spec": {
            "displayName": f"bench run {i}",
            "pipelineSpec": SPEC,
            "runtimeConfig": {"parameters": {}},
            "experimentName": "default",
        },
        "status": {
            "state": "SUCCEEDED" if i % 3 else "FAILED",
            "finishTime": "2024-01-01T00:00:05Z",
            "runDetails": {"taskDetails": tasks},
        },
    }


def seed(home: Path, count: int) -> float:
    os.environ["FLOWYARD_HOME"] = str(home)
    register_kinds()
    start = time.perf_counter()
    store = SqlStore(f"sqlite:///{home / 'flowyard.db'}")
    try:
        for i in range(count):
            body = _run(i)
            status = body.pop("status")
            created = store.create(body)
            store.update_status({**created, "status": status})
    finally:
        store.close()
    return time.perf_counter() - start


def timed(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def summary(ms: list[float]) -> str:
    p95 = sorted(ms)[max(0, int(len(ms) * 0.95) - 1)]
    return f"median {statistics.median(ms):6.1f} ms   p95 {p95:6.1f} ms"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    cpus = os.cpu_count()
    return f"load average (1, 5, 15 min): {one:.2f} {five:.2f} {fifteen:.2f} on {cpus} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--creates", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flowyard-bench-kfp-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        print(f"seeding {args.runs} runs: {seed(home, args.runs):.1f} s")
        server = RunningServer(home).start(timeout=120)
        try:
            import kfp

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                client = kfp.Client(host=server.url, existing_token=server.token)
            import httpx

            http = httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}
            )
            print(load_average())
            t = time.perf_counter()
            first = client.list_runs(page_size=20)
            print(
                f"cold first page (index build): {(time.perf_counter() - t) * 1000:.0f} ms, "
                f"total_size={first.total_size}"
            )
            failed = json.dumps(
                {"predicates": [{"key": "state", "operation": "EQUALS", "string_value": "FAILED"}]}
            )
            cases = {
                "list_runs page_size=20 (created_at)": lambda: client.list_runs(page_size=20),
                "list_runs page_size=20 created_at desc": lambda: client.list_runs(
                    page_size=20, sort_by="created_at desc"
                ),
                "list_runs page_size=20 filter state=FAILED, name desc": lambda: client.list_runs(
                    page_size=20, sort_by="name desc", filter=failed
                ),
            }
            token = first.next_page_token
            cases["list_runs next page (page_token)"] = lambda: client.list_runs(
                page_size=20, page_token=token
            )
            raw = {
                "list_runs page_size=20 (created_at)": {},
                "list_runs page_size=20 created_at desc": {"sort_by": "created_at desc"},
                "list_runs page_size=20 filter state=FAILED, name desc": {
                    "sort_by": "name desc",
                    "filter": failed,
                },
                "list_runs next page (page_token)": {"page_token": token},
            }
            for label, fn in cases.items():
                params = {"page_size": 20, **raw[label]}

                def plain(params: dict[str, Any] = params) -> None:
                    http.get("/apis/v2beta1/runs", params=params).raise_for_status()

                print(f"{label:55s} kfp.Client {summary(timed(fn, args.pages))}")
                print(f"{'':55s} httpx      {summary(timed(plain, args.pages))}")

            spec = json.loads(json.dumps(SPEC))
            spec["root"] = {"dag": {"tasks": {}}}
            exp = client.create_experiment("bench")
            from tests.kfp_api import pipelines

            package = pipelines.compile_to(pipelines.adder, Path(tmp) / "adder.yaml")
            with contextlib.redirect_stdout(io.StringIO()):  # kfp prints a link per run
                ms = timed(
                    lambda: client.run_pipeline(
                        exp.experiment_id,
                        "bench create",
                        pipeline_package_path=str(package),
                        params={"x": 1, "y": 2},
                    ),
                    args.creates,
                )
            print(
                f"{'create run via kfp.Client (run_pipeline), per call':55s} {summary(ms)}  "
                f"total {sum(ms) / 1000:.1f} s for {args.creates}"
            )
            print(load_average())
        finally:
            server.stop()


if __name__ == "__main__":
    main()
