"""The recurring-run scheduler: schedule math and no double firing across a lost status write."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import yaml

from flowyard.controllers.base import ControllerContext, ObjectKey
from flowyard.controllers.events import EventRecorder
from flowyard.kfp_api import register_kinds
from flowyard.pipelines.kinds import RUN
from flowyard.pipelines.recurring import (
    RECURRING_RUN,
    RecurringRunController,
    due_times,
    next_fire,
)
from flowyard.store import SqlStore
from tests.kfp_api import pipelines

T0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


def test_periodic_catchup_and_no_catchup() -> None:
    spec: dict[str, Any] = {"trigger": {"periodicSchedule": {"intervalSecond": 60}}}
    assert due_times(spec, T0, None, T0 + 185, limit=10) == [T0 + 60, T0 + 120, T0 + 180]
    assert due_times(spec, T0, T0 + 60, T0 + 185, limit=1) == [T0 + 120]
    assert due_times({**spec, "noCatchup": True}, T0, None, T0 + 185, limit=10) == [T0 + 180]


def test_cron_six_fields_seconds_first_and_end_time() -> None:
    spec: dict[str, Any] = {
        "trigger": {"cronSchedule": {"cron": "0 0 9 ? * 2-6", "endTime": "2024-01-04T00:00:00Z"}}
    }
    first = next_fire(spec, T0, T0)
    assert first == datetime(2024, 1, 2, 9, tzinfo=UTC).timestamp()  # Jan 1 2024 is a Monday
    assert next_fire(spec, T0, datetime(2024, 1, 3, 10, tzinfo=UTC).timestamp()) is None


def test_fire_times_are_strictly_after_the_start_time_as_in_kfp() -> None:
    start = "2024-01-01T00:00:00Z"
    periodic: dict[str, Any] = {
        "trigger": {"periodicSchedule": {"intervalSecond": 10, "startTime": start}}
    }
    assert due_times(periodic, T0 + 500, None, T0 + 25, limit=10) == [T0 + 10, T0 + 20]
    cron: dict[str, Any] = {
        "trigger": {"cronSchedule": {"cron": "0 * * * * *", "startTime": start}}
    }
    assert due_times(cron, T0 + 500, None, T0 + 125, limit=10) == [T0 + 60, T0 + 120]
    assert due_times({**cron, "noCatchup": True}, T0 + 500, None, T0 + 30, limit=10) == []


def test_refiring_after_a_lost_status_write_creates_no_second_run(tmp_path: Path) -> None:
    register_kinds()
    ir = yaml.safe_load(pipelines.compile_to(pipelines.adder, tmp_path / "a.yaml").read_text())
    store = SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        spec = {
            "pipelineSpec": ir,
            "trigger": {
                "periodicSchedule": {"intervalSecond": 3600, "startTime": "2024-01-01T00:00:00Z"}
            },
            "noCatchup": True,
        }
        rr = store.create(
            {
                "apiVersion": "pipelines.kubeflow.org/v2beta1",
                "kind": "RecurringRun",
                "metadata": {"name": "nightly"},
                "spec": spec,
            }
        )
        ctx = ControllerContext(store, cast(Any, None), EventRecorder(store))
        ctrl = RecurringRunController(ctx)
        ctrl.reconcile(ObjectKey("default", "nightly"))
        runs = store.list(RUN, "default").items
        assert len(runs) == 1 and runs[0]["metadata"]["name"].startswith("nightly-")
        # Lose the status (a crash between creating the Run and recording the fire time).
        stored = store.get(RECURRING_RUN, "default", "nightly")
        store.update_status({**stored, "status": {}})
        ctrl.reconcile(ObjectKey("default", "nightly"))
        assert len(store.list(RUN, "default").items) == 1
        assert store.get(RECURRING_RUN, "default", "nightly")["status"]["lastFireTime"]
        assert rr["metadata"]["uid"]
    finally:
        store.close()
