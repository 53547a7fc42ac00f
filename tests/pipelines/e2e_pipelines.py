"""Pipelines for the end-to-end tests of Run resources (compiled with the real kfp SDK).

Steps leave side-effect files in ``marker_dir`` so tests can tell how often each step ran.
"""

# no `from __future__ import annotations`: kfp reads the annotations as types
from kfp import dsl

IMAGE = "python:3.11"


@dsl.component(base_image=IMAGE)
def add(a: int, b: int) -> int:
    return a + b


@dsl.pipeline
def adder(a: int = 1, b: int = 2) -> int:
    first = add(a=a, b=b)
    return add(a=first.output, b=10).output


@dsl.component(base_image=IMAGE)
def mark(marker_dir: str, name: str, seconds: float) -> str:
    import os
    import time

    with open(os.path.join(marker_dir, name + ".start"), "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    with open(os.path.join(marker_dir, name + ".end"), "a") as f:
        f.write("done\n")
    return name


@dsl.component(base_image=IMAGE)
def gate(marker_dir: str, upstream: str) -> str:
    import os

    with open(os.path.join(marker_dir, "gate.start"), "a") as f:
        f.write("x\n")
    if not os.path.exists(os.path.join(marker_dir, "allow")):
        print("gate is closed: no 'allow' file")
        raise SystemExit(3)
    return upstream + "-passed"


@dsl.pipeline
def chain(marker_dir: str, seconds: float = 1.5) -> str:
    """Three steps in a row, each sleeping ``seconds``."""
    one = mark(marker_dir=marker_dir, name="one", seconds=seconds)
    two = mark(marker_dir=marker_dir, name="two", seconds=seconds).after(one)
    three = mark(marker_dir=marker_dir, name="three", seconds=seconds).after(two)
    return three.output


@dsl.pipeline
def gated(marker_dir: str) -> str:
    """``ok`` then ``gate``, which fails until ``marker_dir/allow`` exists."""
    ok = mark(marker_dir=marker_dir, name="ok", seconds=0.0)
    return gate(marker_dir=marker_dir, upstream=ok.output).output


@dsl.pipeline
def sleeper(marker_dir: str, seconds: float = 60.0) -> None:
    mark(marker_dir=marker_dir, name="slow", seconds=seconds)
