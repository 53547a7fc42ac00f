# no `from __future__ import annotations`: kfp reads the annotations as types
"""KFP's lightweight launcher script is run without its shell, exactly equivalently."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from kfp import dsl

from flowyard.pipelines import from_function
from flowyard.pipelines.command import RUNTIME_ENV, inline_kfp_launcher
from tests.pipelines.conftest import RunFn


@dsl.component(base_image="python:3.11")
def hello(name: str) -> str:
    return "hello " + name


@dsl.pipeline
def greet(name: str = "x") -> str:
    return hello(name=name).output


def _container() -> dict:
    ir = from_function(greet)
    return next(iter(ir.executors.values()))["container"]


def test_the_compiled_launcher_becomes_a_direct_python_command(tmp_path: Path) -> None:
    container = _container()
    argv = [*container["command"][3:], *container["args"]]  # after the pip preamble
    assert argv[:2] == ["sh", "-ec"]
    inlined, done = inline_kfp_launcher(argv, tmp_path / "program")
    program = tmp_path / "program" / "ephemeral_component.py"
    assert done
    assert inlined[:5] == [
        "python3", "-m", "kfp.dsl.executor_main", "--component_module_path", str(program)
    ]  # fmt: skip
    assert inlined[5:] == argv[4:]
    assert program.read_text() == argv[3]
    assert RUNTIME_ENV == {"_KFP_RUNTIME": "true"}


def test_other_scripts_are_left_alone(tmp_path: Path) -> None:
    argv = ["sh", "-ec", "echo $0; rm -rf /tmp/x", "code", "--flag"]
    assert inline_kfp_launcher(argv, tmp_path) == (argv, False)
    container = _container()
    tampered = [*container["command"][3:], *container["args"]]
    tampered[2] = tampered[2].replace("mktemp -d", "mktemp -d; touch /tmp/owned")
    assert inline_kfp_launcher(tampered, tmp_path) == (tampered, False)


def test_inlined_command_runs_the_component(tmp_path: Path) -> None:
    container = _container()
    out = tmp_path / "executor_output.json"
    executor_input = (
        '{"inputs": {"parameterValues": {"name": "abc"}}, "outputs": {"parameters": '
        '{"Output": {"outputFile": "'
        + str(tmp_path / "Output")
        + '"}}, "outputFile": "'
        + str(out)
        + '"}}'
    )
    argv = [
        a.replace("{{$}}", executor_input) for a in [*container["command"][3:], *container["args"]]
    ]
    inlined, _ = inline_kfp_launcher(argv, tmp_path / "program")
    inlined[0] = sys.executable
    subprocess.run(inlined, env={**RUNTIME_ENV, "PATH": "/usr/bin:/bin"}, check=True, timeout=120)
    assert '"Output": "hello abc"' in out.read_text()


@dsl.component(base_image="python:3.11")
def describe_interpreter(tag: str) -> str:
    import os
    import sys

    with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
        parent = handle.read().replace(b"\0", b" ").decode()
    print("kfp runtime", os.environ.get("_KFP_RUNTIME"), "argv0", sys.argv[0])
    print("forked", "flowyard.executors.forkserver" in parent)
    return f"{tag}:{'kfp.dsl' in sys.modules}"


@dsl.pipeline
def two_steps() -> str:
    first = describe_interpreter(tag="a")
    return describe_interpreter(tag=first.output).output


@pytest.mark.parametrize("fork_server", ["1", "0"], ids=["forked", "spawned"])
def test_steps_run_the_same_forked_or_spawned(
    run_pipeline: RunFn,
    monkeypatch: pytest.MonkeyPatch,
    fork_server: str,
) -> None:
    """Lightweight steps start as forks of a server with kfp preloaded; the outputs, the
    environment and ``sys.argv`` they see are those of a spawned step."""
    monkeypatch.setenv("FLOWYARD_FORK_SERVER", fork_server)
    snap = run_pipeline(two_steps, enable_caching=False)
    assert snap["phase"] == "Succeeded", snap["message"]
    assert snap["outputs"]["parameters"]["Output"] == "a:True:True"
    for node in snap["tasks"].values():
        if node.get("type") != "container":
            continue
        log = Path(node["logPath"]).read_text()
        assert re.search(r"kfp runtime true argv0 \S+/kfp/dsl/executor_main.py\n", log), log
        assert f"forked {fork_server == '1'}" in log
