"""Small KFP pipelines for the KFP API tests (explicit base_image: no SDK deprecation warning)."""

from pathlib import Path

from kfp import compiler, dsl

IMAGE = "python:3.11"


@dsl.component(base_image=IMAGE)
def add(a: int, b: int) -> int:
    return a + b


@dsl.component(base_image=IMAGE)
def write_text(text: str, out: dsl.Output[dsl.Dataset]) -> None:
    with open(out.path, "w") as handle:
        handle.write(text)


@dsl.component(base_image=IMAGE)
def sleep_for(seconds: int) -> None:
    import time

    time.sleep(seconds)


@dsl.component(base_image=IMAGE)
def echo(text: str) -> str:
    return text


@dsl.pipeline(name="adder")
def adder(x: int = 1, y: int = 2) -> None:
    add(a=x, b=y)


@dsl.pipeline(name="writer")
def writer(text: str = "hello") -> None:
    write_text(text=text)


@dsl.pipeline(name="sleeper")
def sleeper(seconds: int = 60) -> None:
    sleep_for(seconds=seconds)


@dsl.pipeline(name="schedule-stamp")
def schedule_stamp() -> None:
    echo(text=dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER)


def compile_to(func: object, path: Path) -> Path:
    compiler.Compiler().compile(pipeline_func=func, package_path=str(path))
    return path
