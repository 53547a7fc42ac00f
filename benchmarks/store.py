"""Store benchmark (issue 3, item 3): list latency and write throughput of the SQL store.

Fills a store with N Jobs in 10 namespaces, then reports the median and p95 time of:
* a 500-item page (first page and a middle page via ``continue``), all namespaces;
* a 500-item page with a label selector that matches half the objects;
* one namespace (N/10 objects) without a limit;
* create, update_status and get of a single object.

Target (SQLite): a 500-item page out of 10,000 objects well under 100 ms.

Run: ``python benchmarks/store.py [--objects 10000] [--url sqlite:///PATH|postgresql+psycopg://...]``
(default: SQLite in a temporary directory).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowyard.resources.kinds import JOB
from flowyard.store.sql import SqlStore


def job(name: str, namespace: str, index: int) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": "bench", "half": "yes" if index % 2 else "no"},
        },
        "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}},
    }


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and p95 of ``fn`` in milliseconds."""
    fn()  # warm caches and connections
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def fill(store: SqlStore, count: int) -> None:
    start = time.perf_counter()
    for i in range(count):
        store.create(job(f"job-{i:06d}", f"ns-{i % 10}", i))
    seconds = time.perf_counter() - start
    print(f"create x{count}: {seconds:.1f} s ({seconds / count * 1000:.2f} ms each)")


def run(url: str, count: int, repeat: int) -> None:
    store = SqlStore(url)
    try:
        fill(store, count)
        middle = store.list(JOB, limit=count // 2).continue_token
        cases: dict[str, Callable[[], object]] = {
            "list 500 (first page)": lambda: store.list(JOB, limit=500),
            "list 500 (middle page)": lambda: store.list(JOB, limit=500, continue_token=middle),
            "list 500 labelSelector half=yes": lambda: store.list(
                JOB, limit=500, label_selector="half=yes"
            ),
            f"list namespace ns-3 ({count // 10} objects)": lambda: store.list(JOB, "ns-3"),
            "get": lambda: store.get(JOB, "ns-3", "job-000003"),
            "update_status": lambda: store.update_status(
                {**job("job-000003", "ns-3", 3), "status": {"active": 1}}
            ),
            "create": lambda: store.create(
                {**job("", "ns-0", 0), "metadata": {"generateName": "x-", "namespace": "ns-0"}}
            ),
        }
        for name, fn in cases.items():
            median, p95 = timed(fn, repeat)
            print(f"{name:45s} median {median:7.2f} ms   p95 {p95:7.2f} ms")
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--url", help="database URL (default: SQLite in a temporary directory)")
    args = parser.parse_args()
    if args.url:
        run(args.url, args.objects, args.repeat)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.objects, args.repeat)


if __name__ == "__main__":
    main()
