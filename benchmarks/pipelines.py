"""Pipeline step overhead: kfp.local (SubprocessRunner(use_venv=False)) vs the flowyard engine.

Runs the same three pipelines, compiled once with the kfp SDK, under both runners in one process:

* ``chain``: 3 no-op steps, each after the previous;
* ``fanout``: 20 independent no-op steps;
* ``parallel_for``: ``dsl.ParallelFor`` over 4 items, each step ``time.sleep(1.5)``.

For each it reports wall time, per-step overhead ``(wall - ideal) / steps`` where ``ideal`` is
the pipeline's own sleeping on its critical path (0, 0 and 1.5 s), achieved concurrency
``(steps * single + sleep) / wall`` where ``single`` is the wall time of a one-step pipeline on
the same runner (how many steps' worth of work were in flight on average), and the ratio
kfp.local / flowyard. kfp.local runs with its defaults (components keep their pip preamble;
caching off); flowyard runs with caching off too, so both do every step.

flowyard runs twice: as it runs by default (lightweight steps forked from the executor's fork
server, which has kfp preloaded) and with ``FLOWYARD_FORK_SERVER=0`` (every step a fresh
interpreter), so the table shows what the fork server buys.

Usage: ``python benchmarks/pipelines.py [--repeat N] [--skip-kfp-local]``
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from kfp import dsl

IMG = "python:3.11"


@dsl.component(base_image=IMG)
def noop():
    pass


@dsl.component(base_image=IMG)
def nap(seconds: float):
    import time

    time.sleep(seconds)


@dsl.pipeline
def single() -> None:
    noop()


@dsl.pipeline
def chain() -> None:
    a = noop()
    b = noop().after(a)
    noop().after(b)


@dsl.pipeline
def fanout() -> None:
    for _ in range(20):
        noop()


@dsl.pipeline
def parallel_for() -> None:
    with dsl.ParallelFor([1, 2, 3, 4]):
        nap(seconds=1.5)


CASES: list[tuple[str, Any, int, float]] = [
    ("chain (3 steps)", chain, 3, 0.0),
    ("20 independent no-ops", fanout, 20, 0.0),
    ("ParallelFor 4 x sleep(1.5)", parallel_for, 4, 1.5),
]


def time_kfp_local(pipeline: Any) -> float:
    from kfp import local

    root = tempfile.mkdtemp(prefix="kfp-local-bench-")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root)
    start = time.perf_counter()
    pipeline()
    return time.perf_counter() - start


class Flowyard:
    def __init__(self) -> None:
        os.environ.setdefault("FLOWYARD_HOME", tempfile.mkdtemp(prefix="flowyard-bench-"))
        from flowyard.executors.local import LocalExecutor

        self.executor = LocalExecutor()
        self.executor.recover()
        self._irs: dict[str, Any] = {}

    def time(self, pipeline: Any) -> float:
        from flowyard.pipelines import PipelineRun, from_function

        name = pipeline.name
        if name not in self._irs:
            self._irs[name] = from_function(pipeline)
        start = time.perf_counter()
        run = PipelineRun(self._irs[name], executor=self.executor, enable_caching=False)
        snap = run.run_until_done(timeout=600, poll=0.5)
        wall = time.perf_counter() - start
        if snap["phase"] != "Succeeded":
            raise RuntimeError(f"flowyard run of {name} ended {snap['phase']}: {snap['message']}")
        return wall

    def close(self) -> None:
        self.executor.shutdown(kill=True)


def median_of(fn: Callable[[], float], repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def row(label: str, wall: float, steps: int, ideal: float, one: float) -> dict[str, float | str]:
    return {
        "case": label,
        "wall": wall,
        "overhead": (wall - ideal) / steps,
        "concurrency": (steps * one + ideal * steps) / wall if ideal else steps * one / wall,
    }


def time_flowyard(repeat: int, fork_server: bool) -> tuple[float, list[dict[str, float | str]]]:
    """One-step wall and the rows for every case, with the executor's fork server on or off."""
    os.environ["FLOWYARD_FORK_SERVER"] = "1" if fork_server else "0"
    fy = Flowyard()
    try:
        fy.time(single)  # warm-up: imports, compile, the fork server's start
        one = median_of(lambda: fy.time(single), repeat)
        rows = [
            row(label, median_of(lambda p=p: fy.time(p), repeat), n, ideal, one)
            for label, p, n, ideal in CASES
        ]
    finally:
        fy.close()
    return one, rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="flowyard repetitions (median)")
    parser.add_argument("--skip-kfp-local", action="store_true")
    args = parser.parse_args(argv)
    fy_one, fy_rows = time_flowyard(args.repeat, fork_server=True)
    sp_one, sp_rows = time_flowyard(args.repeat, fork_server=False)
    kl_rows: list[dict[str, float | str]] = []
    kl_one = 0.0
    if not args.skip_kfp_local:
        kl_one = time_kfp_local(single)
        kl_rows = [row(label, time_kfp_local(p), n, ideal, kl_one) for label, p, n, ideal in CASES]
    print(f"\nmachine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(
        f"one-step pipeline wall: flowyard {fy_one:.3f} s (steps spawned: {sp_one:.3f} s), "
        f"kfp.local {kl_one:.3f} s\n"
    )
    print(
        "| pipeline | runner | wall (s) | per-step overhead (s) | achieved concurrency "
        "| kfp.local / runner |"
    )
    print("|---|---|---:|---:|---:|---:|")
    runners = [("flowyard", fy_rows), ("flowyard, steps spawned", sp_rows), ("kfp.local", kl_rows)]
    for i, (label, *_rest) in enumerate(CASES):
        for runner, rows in runners:
            if not rows:
                continue
            r = rows[i]
            ratio = f"{float(kl_rows[i]['wall']) / float(r['wall']):.1f}x" if kl_rows else "n/a"
            print(
                f"| {label} | {runner} | {r['wall']:.2f} | {r['overhead']:.3f} "
                f"| {r['concurrency']:.1f} | {ratio} |"
            )


if __name__ == "__main__":
    main()
