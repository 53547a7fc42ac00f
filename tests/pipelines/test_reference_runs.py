"""Every IR in the shared KFP reference set runs end to end and ends as its code implies."""

import re
from pathlib import Path

import pytest

from flowyard.pipelines import load_yaml

from .conftest import RunFn, log_of, task

REFERENCE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "kfp" / "pipelines"
)
pytestmark = pytest.mark.skipif(not REFERENCE.exists(), reason="reference IRs not present")


def _load(name: str):  # type: ignore[no-untyped-def]
    return load_yaml(REFERENCE / name)


def test_hello_world(run_pipeline: RunFn) -> None:
    snap = run_pipeline(_load("hello_world.yaml"))
    assert snap["phase"] == "Succeeded"
    assert "hello world" in log_of(snap, "echo")
    assert task(snap, "echo")["image"].endswith("python-311:latest")


def test_add_numbers(run_pipeline: RunFn) -> None:
    snap = run_pipeline(_load("add_numbers.yaml"), {"a": 19, "b": 23})
    assert snap["phase"] == "Succeeded"
    assert snap["outputs"]["parameters"] == {"Output": 42}
    assert isinstance(snap["outputs"]["parameters"]["Output"], int)
    assert task(snap, "add-numbers")["preambleSkipped"] is True


def test_producer_consumer(run_pipeline: RunFn) -> None:
    snap = run_pipeline(_load("producer_consumer_param_pipeline.yaml"), {"text": "Bonjour"})
    assert snap["phase"] == "Succeeded"
    produced = task(snap, "producer")["outputs"]["parameters"]["output_value"]
    assert produced == "Bonjour, this is an output parameter\n"
    assert "Bonjour, this is an output parameter" in log_of(snap, "consumer")


def test_condition(run_pipeline: RunFn) -> None:
    snap = run_pipeline(_load("pipeline_with_condition.yaml"))
    assert snap["phase"] == "Succeeded"
    flip = task(snap, "flip-coin-op")["outputs"]["parameters"]["Output"]
    cond = task(snap, "condition-1")
    if flip == "heads":
        assert cond["state"] == "Succeeded"
        assert "condition test" in log_of(snap, "condition-1/print-op-3")
    else:
        assert (cond["state"], cond["reason"]) == ("Skipped", "ConditionNotMet")
        assert "condition-1/print-op-3" not in snap["tasks"]
    assert flip in log_of(snap, "print-op")


def test_exit_handler(run_pipeline: RunFn) -> None:
    snap = run_pipeline(_load("pipeline_with_exit_handler.yaml"))
    assert snap["phase"] == "Failed"
    assert snap["failedTasks"] == ["exit-handler-1/fail-op"]
    assert "exit-handler-1/fail-op" in snap["message"]
    assert "Task failed." in log_of(snap, "exit-handler-1/fail-op")
    assert task(snap, "exit-handler-1/print-op-2")["state"] == "Succeeded"
    assert task(snap, "print-op")["state"] == "Succeeded"
    assert "Exit handler has worked!" in log_of(snap, "print-op")


def test_loops(run_pipeline: RunFn) -> None:
    snap = run_pipeline(_load("pipeline_with_loops.yaml"), {"loop_parameter": ["x", "y", "z"]})
    assert snap["phase"] == "Succeeded"
    texts = [log_of(snap, f"for-loop-1/iteration-{i}/print-text") for i in range(3)]
    assert [re.findall(r"^([xyz])$", t, re.M) for t in texts] == [["x"], ["y"], ["z"]]
    assert "10" in log_of(snap, "for-loop-2/iteration-1/print-text-2")
    assert "20" in log_of(snap, "for-loop-4/iteration-1/print-text-5")
    assert "{'A_a': '1', 'B_b': '2'}" in log_of(snap, "for-loop-2/iteration-0/print-struct")


def test_retry_pipeline(run_pipeline: RunFn) -> None:
    snap = run_pipeline(_load("pipeline_with_retry.yaml"))
    assert snap["phase"] == "Succeeded"
    assert task(snap, "add")["outputs"]["parameters"] == {"Output": 8.0}


def test_artifact_cache_nested_dags(run_pipeline: RunFn) -> None:
    snap = run_pipeline(_load("artifact_cache.yaml"))
    assert snap["phase"] == "Succeeded"
    dataset = task(snap, "mantle")["outputs"]["artifacts"]["Output"][0]
    assert Path(dataset["uri"]).read_text() == "foo"
    assert dataset["type"]["schemaTitle"] == "system.Dataset"
    assert "input:  foo" in log_of(snap, "crust-comp")
    again = run_pipeline(_load("artifact_cache.yaml"))
    assert task(again, "mantle/core/core-comp")["state"] == "Cached"
    assert task(again, "crust-comp")["state"] == "Cached"
