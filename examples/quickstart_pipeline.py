"""The quickstart pipeline: plain KFP 2.x code, unchanged, run by `flowyard run`.

    flowyard run examples/quickstart_pipeline.py -p n=200
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output


@dsl.component(base_image="python:3.11")
def make_data(n: int, data: Output[Dataset]) -> None:
    import random

    random.seed(0)
    with open(data.path, "w") as f:
        for _ in range(n):
            x = random.uniform(-1, 1)
            f.write(f"{x},{3 * x + 0.5 + random.gauss(0, 0.1)}\n")


@dsl.component(base_image="python:3.11")
def fit(data: Input[Dataset], lr: float, metrics: Output[Metrics]) -> float:
    rows = [tuple(map(float, line.split(","))) for line in open(data.path)]
    w = b = 0.0
    for _ in range(200):
        gw = sum((w * x + b - y) * x for x, y in rows) / len(rows)
        gb = sum(w * x + b - y for x, y in rows) / len(rows)
        w, b = w - lr * gw, b - lr * gb
    loss = sum((w * x + b - y) ** 2 for x, y in rows) / len(rows)
    metrics.log_metric("mse", loss)
    return loss


@dsl.component(base_image="python:3.11")
def report(losses: list) -> str:
    return f"best mse over {len(losses)} learning rates: {min(losses):.4f}"


@dsl.pipeline(name="quickstart")
def quickstart(n: int = 100) -> str:
    data = make_data(n=n)
    with dsl.ParallelFor([0.05, 0.1, 0.3]) as lr:
        trained = fit(data=data.outputs["data"], lr=lr)
    return report(losses=dsl.Collected(trained.outputs["Output"])).output
