"""Tuning benchmark (issue 7, item 8, parts a, b and c).

(a) Search quality: Branin, Hartmann6 and Rosenbrock-10, 100 trials each, 10 seeds, run one
    trial at a time. Methods: flowyard's ``tpe`` engine with ``random_state`` = seed (driven
    exactly as the Suggestion controller drives it: ``suggest`` with the persisted history),
    hyperopt's TPE (what Katib runs under ``tpe``) and plain Optuna TPE (``TPESampler(seed=
    seed)`` defaults). Reported: median best value and regret (best - known optimum) over seeds,
    the regret IQR, a Mann-Whitney p-value, and in how many seeds flowyard's best equals
    Optuna's (flowyard's ``tpe`` is Optuna's sampler by construction, so: all of them).
    ``--ablations`` adds flowyard's engine rebuilt every 10 trials (the restart path).
(b) Orchestration overhead: a real ``flowyard up`` (own FLOWYARD_HOME, free port) runs a
    100-trial ``random`` experiment with ``parallelTrialCount`` 2 whose trial is a trivial
    objective (``sh -c 'echo loss=...'``). Reported: wall seconds per trial (experiment
    creation to Succeeded / trials) and, per trial, the seconds from its Trial appearing (its
    assignment was just stored) to the Trial recording its metric (Succeeded with an
    observation), seen through a watch. Target: <= 0.3 s per trial.
(c) Suggestion latency: ``suggest(1, history)`` with 1000 completed trials in the history, for a
    warm engine (the controller keeps it between calls) and a cold one (rebuilt from the store
    after a restart). Target: warm <= 20 ms.

Run: ``python benchmarks/tuning.py [--quick] [--only a|b|c]`` (a needs the ``bench`` extra:
hyperopt).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from flowyard.tuning.algorithms import build_engine
from flowyard.tuning.engine import TrialRecord, TrialState


@dataclass(frozen=True)
class Problem:
    name: str
    bounds: list[tuple[float, float]]
    optimum: float
    f: Callable[[Sequence[float]], float]


def branin(x: Sequence[float]) -> float:
    x1, x2 = x
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


_H_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x: Sequence[float]) -> float:
    xs = np.asarray(x)
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (xs - _H_P) ** 2, axis=1))))


def rosenbrock(x: Sequence[float]) -> float:
    return float(
        sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))
    )


PROBLEMS = [
    Problem("Branin", [(-5, 10), (0, 15)], 0.397887, branin),
    Problem("Hartmann6", [(0, 1)] * 6, -3.32237, hartmann6),
    Problem("Rosenbrock-10", [(-5, 10)] * 10, 0.0, rosenbrock),
]


def experiment_spec(problem: Problem, seed: int) -> dict[str, Any]:
    return {
        "objective": {"type": "minimize", "objectiveMetricName": "f"},
        "algorithm": {
            "algorithmName": "tpe",
            "algorithmSettings": [{"name": "random_state", "value": str(seed)}],
        },
        "parameters": [
            {
                "name": f"x{i}",
                "parameterType": "double",
                "feasibleSpace": {"min": str(lo), "max": str(hi)},
            }
            for i, (lo, hi) in enumerate(problem.bounds)
        ],
    }


def run_flowyard(problem: Problem, trials: int, seed: int) -> float:
    """flowyard's ``tpe`` (``random_state`` = seed) driven as the Suggestion controller drives
    it: one engine kept between calls, ``suggest`` with the persisted history."""
    engine = build_engine(experiment_spec(problem, seed), uid=f"bench-{seed}")
    return _drive(engine, problem, trials)


def run_flowyard_restarted(problem: Problem, trials: int, seed: int) -> float:
    """Ablation: the engine rebuilt from the history every 10 trials, as after a control-plane
    restart (the cold path: reseeded from the seed and the number of records)."""
    history: list[TrialRecord] = []
    for start in range(0, trials, 10):
        engine = build_engine(experiment_spec(problem, seed), uid=f"bench-{seed}")
        _drive(engine, problem, min(10, trials - start), history)
    return min(r.objective for r in history if r.objective is not None)


def _drive(
    engine: Any, problem: Problem, trials: int, history: list[TrialRecord] | None = None
) -> float:
    history = [] if history is None else history
    for _ in range(trials):
        index = len(history)
        suggestion = engine.suggest(1, history)[0]
        x = [float(suggestion.values[f"x{i}"]) for i in range(len(problem.bounds))]
        history.append(
            TrialRecord(f"t{index}", suggestion.assignments, TrialState.SUCCEEDED, problem.f(x))
        )
    return min(r.objective for r in history if r.objective is not None)


def _run_optuna(problem: Problem, trials: int, sampler: optuna.samplers.BaseSampler) -> float:
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        return problem.f(
            [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(problem.bounds)]
        )

    study.optimize(objective, n_trials=trials)
    return float(study.best_value)


def run_optuna(problem: Problem, trials: int, seed: int) -> float:
    """Plain Optuna TPE: ``TPESampler(seed=seed)`` defaults (Optuna 5: multivariate with the
    constant liar, 10 startup trials, 24 EI candidates)."""
    return _run_optuna(problem, trials, optuna.samplers.TPESampler(seed=seed))


def run_optuna_multivariate(problem: Problem, trials: int, seed: int) -> float:
    """Ablation: Optuna's multivariate TPE with constant liar, one sampler (what flowyard
    configures, without flowyard's engine around it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
        return _run_optuna(problem, trials, sampler)


def run_hyperopt(problem: Problem, trials: int, seed: int) -> float:
    """hyperopt's TPE as Katib's ``tpe`` image runs it (defaults: 20 startup trials, 24 EI
    candidates, gamma 0.25)."""
    import hyperopt

    space = [hyperopt.hp.uniform(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(problem.bounds)]
    store = hyperopt.Trials()
    hyperopt.fmin(
        lambda x: problem.f(list(x)),
        space,
        algo=hyperopt.tpe.suggest,
        max_evals=trials,
        trials=store,
        rstate=np.random.default_rng(seed),
        show_progressbar=False,
    )
    return float(min(store.losses()))


FLOWYARD = "flowyard tpe"
OPTUNA = "optuna TPE"
HYPEROPT = "hyperopt TPE (Katib)"
METHODS: dict[str, Callable[[Problem, int, int], float]] = {
    FLOWYARD: run_flowyard,
    OPTUNA: run_optuna,
    HYPEROPT: run_hyperopt,
}
ABLATIONS: dict[str, Callable[[Problem, int, int], float]] = {
    "flowyard, restarted/10": run_flowyard_restarted,
    "optuna multivar+liar": run_optuna_multivariate,
}


def _one_run(task: tuple[str, str, int, int]) -> tuple[str, str, int, float]:
    problem_name, method, trials, seed = task
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problem = next(p for p in PROBLEMS if p.name == problem_name)
    fn = {**METHODS, **ABLATIONS}[method]
    return problem_name, method, seed, fn(problem, trials, seed)


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def quality(trials: int, seeds: int, ablations: bool = False, jobs: int = 1) -> None:
    """Part (a). Every (problem, method, seed) run is independent; ``jobs`` processes run them.
    Reported per method: median best value over seeds, the interquartile range of the regret,
    and a one-sided Mann-Whitney U test of "flowyard's regrets are larger" (p small: flowyard
    is worse; p near 1: flowyard is better)."""
    from concurrent.futures import ProcessPoolExecutor

    from scipy.stats import mannwhitneyu

    methods = list(METHODS) + (list(ABLATIONS) if ablations else [])
    tasks = [(p.name, m, trials, seed) for p in PROBLEMS for m in methods for seed in range(seeds)]
    started = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_one_run, tasks, chunksize=4))
    else:
        results = [_one_run(t) for t in tasks]
    print(
        f"\n(a) search quality: {trials} trials, {seeds} seeds, minimizing "
        f"({time.perf_counter() - started:.0f} s)\n"
        "regret = best found - known optimum; IQR = 25th-75th percentile of regret over seeds;\n"
        "p(flowyard worse) = one-sided Mann-Whitney U p-value that flowyard's regrets are larger"
    )
    header = (
        f"{'problem':<14}{'method':<23}{'median best':>12}{'median regret':>14}"
        f"{'regret IQR':>22}{'p(flowyard worse)':>19}"
    )
    print(header + "\n" + "-" * len(header))
    for problem in PROBLEMS:
        regrets = {
            m: [v - problem.optimum for pn, mm, _, v in results if pn == problem.name and mm == m]
            for m in methods
        }
        for method in methods:
            values = regrets[method]
            p_value = (
                mannwhitneyu(regrets[FLOWYARD], values, alternative="greater").pvalue
                if method != FLOWYARD
                else float("nan")
            )
            iqr = f"{_percentile(values, 25):.4g} - {_percentile(values, 75):.4g}"
            print(
                f"{problem.name:<14}{method:<23}"
                f"{statistics.median(values) + problem.optimum:>12.4f}"
                f"{statistics.median(values):>14.4f}{iqr:>22}{p_value:>19.3f}"
            )
        same = sum(a == b for a, b in zip(regrets[FLOWYARD], regrets[OPTUNA], strict=True))
        print(f"{'':<14}-> flowyard's best equals Optuna's (same seed) in {same}/{seeds} seeds")
        ours = statistics.median(regrets[FLOWYARD])
        meets = "meets" if ours <= statistics.median(regrets[OPTUNA]) else "is BEHIND"
        beats = "beats" if ours < statistics.median(regrets[HYPEROPT]) else "does NOT beat"
        print(f"{'':<14}-> by median regret flowyard {meets} optuna and {beats} hyperopt")


def latency(completed: int, calls: int) -> None:
    problem = PROBLEMS[1]
    spec = experiment_spec(problem, 0)
    rng = np.random.default_rng(0)
    history: list[TrialRecord] = []
    for index in range(completed):
        x = [float(rng.uniform(lo, hi)) for lo, hi in problem.bounds]
        history.append(
            TrialRecord(
                f"t{index}",
                {f"x{i}": repr(v) for i, v in enumerate(x)},
                TrialState.SUCCEEDED,
                problem.f(x),
            )
        )
    started = time.perf_counter()
    engine = build_engine(spec, uid="latency")
    engine.suggest(1, history)
    cold = time.perf_counter() - started
    warm: list[float] = []
    cpu: list[float] = []
    for index in range(calls):
        started, cpu_started = time.perf_counter(), time.process_time()
        suggestion = engine.suggest(1, history)[0]
        warm.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        x = [float(suggestion.values[f"x{i}"]) for i in range(6)]
        history.append(
            TrialRecord(f"w{index}", suggestion.assignments, TrialState.SUCCEEDED, problem.f(x))
        )
    median_ms = statistics.median(warm) * 1000
    cpu_ms = statistics.median(cpu) * 1000
    print(f"\n(c) suggestion latency, tpe, Hartmann6, {completed} completed trials")
    verdict = "met" if median_ms <= 20 else "NOT met"
    print(
        f"{'warm engine, median wall time':<34}{median_ms:>9.1f} ms   (target <= 20 ms: {verdict})"
    )
    print(f"{'warm engine, median CPU time':<34}{cpu_ms:>9.1f} ms   (unaffected by other load)")
    print(f"{'warm engine, max wall time':<34}{max(warm) * 1000:>9.1f} ms")
    print(f"{'cold engine (rebuild + suggest)':<34}{cold * 1000:>9.1f} ms")
    print(f"{'load average (1 min) / CPUs':<34}{os.getloadavg()[0]:>9.1f} / {os.cpu_count()}")


def _start_server(home: str) -> tuple[Any, str]:
    import socket
    import subprocess

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, FLOWYARD_HOME=home, FLOWYARD_URL=f"http://127.0.0.1:{port}")
    env.pop("FLOWYARD_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowyard.cli.main", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the server did not start in 60 s")


def _trivial_experiment(trials: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "overhead", "namespace": "default"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": 2,
            "maxTrialCount": trials,
            "maxFailedTrialCount": 0,
            "parameters": [
                {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
            ],
            "trialTemplate": {
                "primaryContainerName": "main",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        "name": "main",
                                        "image": "none",
                                        "command": ["sh", "-c", "echo loss=${trialParameters.x}"],
                                    }
                                ],
                                "restartPolicy": "Never",
                            }
                        }
                    },
                },
            },
        },
    }


def _watch_trials(client: Any, seen: dict[str, list[float]], stop: Any) -> None:
    try:
        _follow_trials(client, seen, stop)
    except Exception:  # the client is closed under the watch when the run ends
        if not stop.is_set():
            raise


def _follow_trials(client: Any, seen: dict[str, list[float]], stop: Any) -> None:
    for event in client.watch("trials.kubeflow.org", "default", timeout=600):
        now = time.perf_counter()
        obj = event.get("object") or {}
        name = (obj.get("metadata") or {}).get("name")
        times = seen.setdefault(name, [now, 0.0])
        conds = (obj.get("status") or {}).get("conditions") or []
        if not times[1] and any(
            c.get("type") == "Succeeded" and c.get("status") == "True" for c in conds
        ):
            times[1] = now
        if stop.is_set():
            return


def orchestration(trials: int) -> None:
    """Part (b): per-trial overhead of the whole control plane on a trivial objective."""
    import tempfile
    import threading

    from flowyard.client import Client
    from flowyard.resources.conditions import get_condition

    print(f"\n(b) orchestration overhead: {trials} trials, parallelTrialCount 2, sh objective")
    with tempfile.TemporaryDirectory() as home:
        proc, url = _start_server(home)
        try:
            token = json_token(home)
            with Client(url, token) as client, Client(url, token) as watcher:
                seen: dict[str, list[float]] = {}
                stop = threading.Event()
                thread = threading.Thread(
                    target=_watch_trials, args=(watcher, seen, stop), daemon=True
                )
                thread.start()
                time.sleep(0.5)  # let the watch connect first
                start = time.perf_counter()
                client.create(_trivial_experiment(trials))
                deadline = time.monotonic() + 600
                while True:
                    exp = client.get("experiments.kubeflow.org", "overhead", "default")
                    done = get_condition(exp, "Succeeded") or get_condition(exp, "Failed")
                    if done and done.get("status") == "True":
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError("experiment did not finish in 600 s")
                    time.sleep(0.02)
                wall = time.perf_counter() - start
                stop.set()
        finally:
            proc.terminate()
            proc.wait(15)
    latencies = [b - a for a, b in seen.values() if b]
    status = exp["status"]
    print(f"{'trials succeeded':<40}{status.get('trialsSucceeded', 0):>9}")
    per_trial = wall / max(status.get("trials", 1), 1)
    verdict = "met" if per_trial <= 0.3 else "NOT met"
    label = "wall seconds per trial (throughput)"
    print(f"{label:<40}{per_trial:>9.3f} s (target <= 0.3 s: {verdict})")
    if latencies:
        median = statistics.median(latencies)
        print(f"{'trial created -> metric recorded, median':<40}{median:>9.3f} s")
        print(f"{'trial created -> metric recorded, p90':<40}{_quantile(latencies, 0.9):>9.3f} s")
    print(f"{'load average (1 min) / CPUs':<40}{os.getloadavg()[0]:>9.1f} / {os.cpu_count()}")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def json_token(home: str) -> str:
    import json

    with open(os.path.join(home, "credentials")) as handle:
        return str(json.load(handle)["token"])


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="30 trials x 3 seeds, 200 trials for latency"
    )
    parser.add_argument("--only", choices=["a", "b", "c"], help="run one part")
    parser.add_argument("--seeds", type=int, default=10, help="seeds for part a (default 10)")
    parser.add_argument(
        "--ablations", action="store_true", help="part a: also run the ablation variants"
    )
    parser.add_argument("--jobs", type=int, default=1, help="part a: parallel processes")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parts = {args.only} if args.only else {"a", "b", "c"}
    if "a" in parts:
        try:
            import hyperopt  # noqa: F401
        except ImportError:
            print("hyperopt is missing: pip install 'flowyard[bench]'", file=sys.stderr)
            return 2
        trials, seeds = (30, 3) if args.quick else (100, args.seeds)
        quality(trials, seeds, ablations=args.ablations, jobs=args.jobs)
    if "b" in parts:
        orchestration(trials=30 if args.quick else 100)
    if "c" in parts:
        if args.quick:
            latency(completed=200, calls=10)
        else:
            latency(completed=1000, calls=30)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
