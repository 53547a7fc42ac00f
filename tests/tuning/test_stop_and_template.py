"""Median stopping (a true median) and trial template rendering."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flowyard.errors import InvalidError
from flowyard.resources.admission import admit
from flowyard.resources.registry import KindRegistry
from flowyard.tuning.algorithms import build_engine
from flowyard.tuning.earlystopping import MedianStop
from flowyard.tuning.template import render_run_spec


def test_median_is_a_median_not_a_mean() -> None:
    rule = MedianStop(min_trials_required=3, start_step=2)
    completed = [[1.0, 1.0], [2.0, 2.0], [100.0, 100.0]]
    assert rule.median(completed, 2) == 2.0  # Katib's mean would be 34.33
    assert rule.should_stop([3.0, 2.5], completed)
    assert not rule.should_stop([3.0, 1.5], completed)  # best so far beats the median
    assert not rule.should_stop([50.0], completed)  # before start_step


def test_running_average_uses_the_running_trials_step() -> None:
    rule = MedianStop(min_trials_required=1, start_step=1)
    completed = [[10.0, 0.0, 0.0, 0.0]]
    assert rule.median(completed, 1) == 10.0
    assert rule.median(completed, 4) == 2.5
    assert not rule.should_stop([5.0], completed)
    assert rule.should_stop([5.0, 5.0, 5.0, 5.0], completed)


def test_min_trials_required_and_maximize() -> None:
    rule = MedianStop(min_trials_required=2, start_step=1, maximize=True)
    assert rule.median([[0.9]], 1) is None
    assert not rule.should_stop([0.1], [[0.9]])
    assert rule.should_stop([0.1, 0.2], [[0.9], [0.8, 0.9]])
    assert rule.rule("acc", [[0.9], [0.8]]) == {
        "name": "acc",
        "value": "0.8500000000000001",
        "comparison": "less",
        "startStep": 1,
    }


def test_median_stop_from_katib_example(examples: dict[str, Any]) -> None:
    rule = MedianStop.from_spec(examples["median-stop"]["spec"])
    assert rule == MedianStop(min_trials_required=1, start_step=2, maximize=False)
    assert MedianStop.from_spec(examples["random"]["spec"]) is None
    defaults = MedianStop.from_spec({"earlyStopping": {"algorithmName": "medianstop"}})
    assert defaults == MedianStop(3, 4, False)


def test_render_batch_job_with_metadata_references(
    examples: dict[str, Any], registry: KindRegistry
) -> None:
    exp = copy.deepcopy(examples["random"])
    template = exp["spec"]["trialTemplate"]
    template["trialSpec"]["metadata"] = {"labels": {"team": "ml"}, "annotations": {"owner": "ana"}}
    template["trialParameters"] += [
        {"name": "trialName", "reference": "${trialSpec.Name}"},
        {"name": "team", "reference": "${trialSpec.Labels[team]}"},
    ]
    container = template["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] += [
        "--name=${trialParameters.trialName}",
        "--team=${trialParameters.team}",
        "--ns=${trialSpec.Namespace}",
        "--kind=${trialSpec.Kind}",
        "--api=${trialSpec.APIVersion}",
        "--owner=${trialSpec.Annotations[owner]}",
    ]
    admit(exp, None, registry)
    engine = build_engine(exp["spec"], uid="u")
    suggestion = engine.suggest(1, [])[0]
    job = render_run_spec(exp["spec"], "random-x7k2", "team-a", suggestion.assignments)
    assert job["metadata"]["name"] == "random-x7k2"
    assert job["metadata"]["namespace"] == "team-a"
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[4] == f"--lr={suggestion.assignments['lr']}"
    assert command[5] == f"--momentum={suggestion.assignments['momentum']}"
    assert command[6:] == [
        "--name=random-x7k2",
        "--team=ml",
        "--ns=team-a",
        "--kind=Job",
        "--api=batch/v1",
        "--owner=ana",
    ]
    assert "${" not in str(job)
    assert "${trialParameters.learningRate}" in str(exp["spec"])  # template left untouched


@pytest.mark.parametrize("example", ["pytorchjob-mnist", "trainjob-pytorch"])
def test_render_training_job_kinds(
    examples: dict[str, Any], registry: KindRegistry, example: str
) -> None:
    exp = copy.deepcopy(examples[example])
    admit(exp, None, registry)
    assignments = {"lr": "0.0123", "momentum": "0.77"}
    run_spec = render_run_spec(exp["spec"], "t1", "ns", assignments)
    assert run_spec["kind"] == exp["spec"]["trialTemplate"]["trialSpec"]["kind"]
    text = str(run_spec)
    assert text.count("--lr=0.0123") == (2 if example == "pytorchjob-mnist" else 1)
    assert "--momentum=0.77" in text and "${" not in text


def test_render_missing_assignment_or_label(examples: dict[str, Any]) -> None:
    exp = copy.deepcopy(examples["random"])
    with pytest.raises(InvalidError, match="momentum"):
        render_run_spec(exp["spec"], "t", "ns", {"lr": "0.1"})
    exp["spec"]["trialTemplate"]["trialParameters"].append(
        {"name": "x", "reference": "${trialSpec.Labels[missing]}"}
    )
    with pytest.raises(InvalidError, match="missing"):
        render_run_spec(exp["spec"], "t", "ns", {"lr": "0.1", "momentum": "0.5"})
