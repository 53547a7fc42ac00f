"""Metrics collection: Katib's text filter, custom formats, JSON files, the push helper (from a
real subprocess), observations, records built from Trial resources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowyard.tuning import report_metrics
from flowyard.tuning.engine import TrialState
from flowyard.tuning.metrics import (
    DEFAULT_FILTER,
    MetricLog,
    Observation,
    objective_from_status,
    parse_json_lines,
    parse_pushed,
    parse_text,
)
from flowyard.tuning.push import METRICS_FILE_ENV
from flowyard.tuning.records import record_from_trial


def test_default_filter_is_katibs() -> None:
    assert DEFAULT_FILTER == r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"


def test_stdout_default_format() -> None:
    lines = [
        "epoch 1 loss=0.3 accuracy=.98",
        "Score=-7.53e-05",
        "2026-11-23T10:00:00Z val-loss = 1.5E2",
        "nothing to see here=1",
        "loss=abc",
        "Score=1E0 Score=+1.23E10",
    ]
    logs = parse_text(lines, ["loss", "accuracy", "Score", "val-loss"])
    assert [(m.name, m.value) for m in logs] == [
        ("loss", 0.3),
        ("accuracy", 0.98),
        ("Score", -7.53e-05),
        ("val-loss", 150.0),
        ("Score", 1.0),
        ("Score", 1.23e10),
    ]
    assert logs[3].timestamp == "2026-11-23T10:00:00Z"


def test_custom_metrics_format_from_katib_example() -> None:
    fmt = r"{metricName: ([\w|-]+), metricValue: ((-?\d+)(\.\d+)?)}"
    lines = [
        "{metricName: accuracy, metricValue: 0.9712}",
        "{metricName: loss, metricValue: -2}",
        "loss=0.5",
    ]
    logs = parse_text(lines, ["accuracy", "loss"], [fmt])
    assert [(m.name, m.value) for m in logs] == [("accuracy", 0.9712), ("loss", -2.0)]


def test_json_lines() -> None:
    lines = [
        '{"accuracy": "0.5", "loss": 0.7, "timestamp": 1700000000.5}',
        "",
        '{"accuracy": 0.75, "other": 1, "loss": true}',
    ]
    logs = parse_json_lines(lines, ["accuracy", "loss"])
    assert [(m.name, m.value) for m in logs] == [
        ("accuracy", 0.5),
        ("loss", 0.7),
        ("accuracy", 0.75),
    ]
    with pytest.raises(ValueError, match="line 2"):
        parse_json_lines(['{"a": 1}', "not json"], ["a"])


def test_observation_min_max_latest_and_unavailable() -> None:
    obs = Observation.of(
        [
            MetricLog("loss", 0.5),
            MetricLog("loss", 0.2),
            MetricLog("loss", 0.4),
            MetricLog("acc", 0.9),
        ]
    )
    assert (obs.value("loss", "min"), obs.value("loss", "max"), obs.value("loss", "latest")) == (
        0.2,
        0.5,
        0.4,
    )
    status = obs.to_status(["loss", "acc", "f1"])
    assert status["metrics"][0] == {"name": "loss", "min": "0.2", "max": "0.5", "latest": "0.4"}
    assert status["metrics"][2] == {
        "name": "f1",
        "min": "unavailable",
        "max": "unavailable",
        "latest": "unavailable",
    }
    assert objective_from_status(status, "loss", "min") == 0.2
    assert objective_from_status(status, "f1", "max") is None
    assert obs.history["loss"] == [0.5, 0.2, 0.4]


def test_report_metrics_from_trial_processes(tmp_path: Path) -> None:
    target = tmp_path / "metrics.jsonl"
    code = (
        "import sys\nfrom flowyard.tuning import report_metrics\n"
        "for step in range(20):\n"
        "    report_metrics({'loss': 1.0 / (step + 1), 'rank': int(sys.argv[1])},\n"
        "                   db_manager_address='ignored:6789', timeout=5)\n"
    )
    env = {**os.environ, METRICS_FILE_ENV: str(target)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(rank)], env=env) for rank in range(3)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    logs = parse_pushed(target.read_text().splitlines(), ["loss", "rank"])
    assert len(logs) == 3 * 20 * 2
    assert sorted({m.value for m in logs if m.name == "rank"}) == [0.0, 1.0, 2.0]
    assert all(
        json.loads(line)["timestamp"].endswith("Z") for line in target.read_text().splitlines()
    )


def test_report_metrics_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(METRICS_FILE_ENV, raising=False)
    with pytest.raises(ValueError, match=METRICS_FILE_ENV):
        report_metrics({"loss": 0.1})
    monkeypatch.setenv(METRICS_FILE_ENV, str(tmp_path / "m.jsonl"))
    with pytest.raises(ValueError, match="loss"):
        report_metrics({"loss": "high"})
    with pytest.raises(ValueError, match="finite"):
        report_metrics({"loss": float("nan")})
    report_metrics({"loss": "0.25"})
    assert parse_pushed((tmp_path / "m.jsonl").read_text().splitlines()) == [
        MetricLog(
            "loss", 0.25, parse_pushed((tmp_path / "m.jsonl").read_text().splitlines())[0].timestamp
        )
    ]


def test_parse_pushed_skips_torn_lines() -> None:
    lines = ['{"timestamp": "t", "metrics": {"loss": 0.5}}', '{"timestamp": "t", "metr']
    assert parse_pushed(lines) == [MetricLog("loss", 0.5, "t")]


def test_record_from_trial() -> None:
    trial = {
        "metadata": {"name": "exp-abc", "labels": {"k": "v"}},
        "spec": {"parameterAssignments": [{"name": "lr", "value": "0.01"}]},
        "status": {
            "conditions": [
                {"type": "Created", "status": "True"},
                {"type": "Running", "status": "False"},
                {"type": "Succeeded", "status": "True"},
            ],
            "observation": {
                "metrics": [{"name": "acc", "min": "0.5", "max": "0.9", "latest": "0.8"}]
            },
        },
    }
    spec = {
        "objective": {
            "type": "maximize",
            "objectiveMetricName": "acc",
            "metricStrategies": [{"name": "acc", "value": "max"}],
        }
    }
    record = record_from_trial(trial, spec, [0.5, 0.9, 0.8])
    assert (record.name, record.state, record.objective) == ("exp-abc", TrialState.SUCCEEDED, 0.9)
    assert record.assignments == {"lr": "0.01"} and record.labels == {"k": "v"}
    trial["status"]["conditions"].append({"type": "EarlyStopped", "status": "True"})
    assert record_from_trial(trial, spec).state is TrialState.EARLY_STOPPED
