"""Pipeline/version PATCH (KFP's UpdatePipeline[Version]) and a cron recurring run, through the
real ``kfp`` client."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import kfp_server_api
import pytest

from tests.kfp_api import pipelines


def _error(exc: kfp_server_api.ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def test_update_pipeline_and_version(kfp_client: Any, tmp_path: Path) -> None:
    package = pipelines.compile_to(pipelines.adder, tmp_path / "adder.yaml")
    pipeline = kfp_client.upload_pipeline(str(package), pipeline_name="to rename")
    other = kfp_client.upload_pipeline(str(package), pipeline_name="taken name")
    api = kfp_client._pipelines_api  # kfp.Client has no update method; its generated API does
    updated = api.pipeline_service_update_pipeline(
        pipeline.pipeline_id,
        {"display_name": "renamed", "description": "new words", "tags": {"team": "ml"}},
    )
    assert (updated.display_name, updated.description) == ("renamed", "new words")
    assert updated.tags == {"team": "ml"}
    got = kfp_client.get_pipeline(pipeline.pipeline_id)
    assert got.display_name == "renamed" and got.tags == {"team": "ml"}
    assert kfp_client.get_pipeline_id("renamed") == pipeline.pipeline_id
    # Tags are replaced as a whole.
    again = api.pipeline_service_update_pipeline(pipeline.pipeline_id, {"tags": {"env": "dev"}})
    assert again.tags == {"env": "dev"} and again.display_name == "renamed"
    # A taken display name is refused (409 / ALREADY_EXISTS), and so is a new pipeline that
    # takes the renamed one's name.
    with pytest.raises(kfp_server_api.ApiException) as info:
        api.pipeline_service_update_pipeline(other.pipeline_id, {"display_name": "renamed"})
    assert info.value.status == 409 and _error(info.value)["code"] == 6
    with pytest.raises(kfp_server_api.ApiException) as info:
        kfp_client.upload_pipeline(str(package), pipeline_name="renamed")
    assert info.value.status == 409
    with pytest.raises(kfp_server_api.ApiException) as info:
        api.pipeline_service_update_pipeline(pipeline.pipeline_id, {"tags": {"a.b": "x"}})
    assert info.value.status == 400 and _error(info.value)["code"] == 3

    version = kfp_client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions[0]
    second = kfp_client.upload_pipeline_version(
        str(package), pipeline_version_name="v2", pipeline_id=pipeline.pipeline_id
    )
    out = api.pipeline_service_update_pipeline_version(
        pipeline.pipeline_id,
        version.pipeline_version_id,
        {"display_name": "v1 (first)", "tags": {"stage": "prod"}},
    )
    assert (out.display_name, out.tags) == ("v1 (first)", {"stage": "prod"})
    got_version = kfp_client.get_pipeline_version(pipeline.pipeline_id, version.pipeline_version_id)
    assert got_version.display_name == "v1 (first)"
    with pytest.raises(kfp_server_api.ApiException) as info:
        api.pipeline_service_update_pipeline_version(
            pipeline.pipeline_id, second.pipeline_version_id, {"display_name": "v1 (first)"}
        )
    assert info.value.status == 409
    with pytest.raises(kfp_server_api.ApiException) as info:  # not this pipeline's version
        api.pipeline_service_update_pipeline_version(
            other.pipeline_id, version.pipeline_version_id, {"display_name": "x"}
        )
    assert info.value.status == 404


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _fired(kfp_client: Any, experiment_id: str, recurring_run_id: str) -> list[Any]:
    runs = kfp_client.list_runs(experiment_id=experiment_id, page_size=100).runs or []
    return [r for r in runs if r.recurring_run_id == recurring_run_id]


def test_cron_recurring_run_fires_on_schedule(kfp_client: Any, tmp_path: Path) -> None:
    """A 6-field (seconds first) cron fires through the real client; each fired run's
    scheduled_at is a whole second the cron matches (every 2 s here)."""
    package = pipelines.compile_to(pipelines.adder, tmp_path / "adder.yaml")
    experiment = kfp_client.create_experiment("cron")
    rr = kfp_client.create_recurring_run(
        experiment_id=experiment.experiment_id,
        job_name="every two seconds",
        cron_expression="*/2 * * * * *",
        max_concurrency=3,
        no_catchup=True,
        pipeline_package_path=str(package),
        params={"x": 2, "y": 3},
    )
    assert rr.trigger.cron_schedule.cron == "*/2 * * * * *" and rr.status == "ENABLED"
    deadline = time.monotonic() + 60
    while len(fired := _fired(kfp_client, experiment.experiment_id, rr.recurring_run_id)) < 2:
        assert time.monotonic() < deadline, "the cron schedule did not fire twice"
        time.sleep(0.5)
    kfp_client.disable_recurring_run(rr.recurring_run_id)
    for run in fired:
        when = _epoch(run.scheduled_at)
        assert when == int(when) and int(when) % 2 == 0, run.scheduled_at
        assert _epoch(run.created_at) >= when - 1
    assert len({r.scheduled_at for r in fired}) == len(fired)  # never the same time twice
    got = kfp_client.get_recurring_run(rr.recurring_run_id)
    assert got.status == "DISABLED"
    kfp_client.delete_recurring_run(rr.recurring_run_id)


def test_schedule_time_placeholder_is_the_schedule_time(
    kfp_client: Any, http: httpx.Client, tmp_path: Path
) -> None:
    package = pipelines.compile_to(pipelines.schedule_stamp, tmp_path / "stamp.yaml")
    experiment = kfp_client.create_experiment("stamped")
    start = "2024-01-01T00:00:00Z"  # a past start time backfills: the first fire is 00:00:10
    rr = kfp_client.create_recurring_run(
        experiment_id=experiment.experiment_id,
        job_name="stamped",
        interval_second=10,
        start_time=start,
        end_time="2024-01-01T00:00:15Z",
        pipeline_package_path=str(package),
    )
    deadline = time.monotonic() + 60
    while not (fired := _fired(kfp_client, experiment.experiment_id, rr.recurring_run_id)):
        assert time.monotonic() < deadline, "the schedule did not fire"
        time.sleep(0.5)
    run = kfp_client.wait_for_run_completion(fired[0].run_id, timeout=60)
    assert run.state == "SUCCEEDED"
    assert _epoch(run.scheduled_at) == _epoch("2024-01-01T00:00:10Z")
    # The typed model drops parameter values (KFP keeps them in MLMD): read the raw JSON.
    data = http.get(f"/apis/v2beta1/runs/{run.run_id}").json()
    echo = next(t for t in data["run_details"]["task_details"] if t["display_name"] == "echo")
    assert echo["inputs"]["text"]["parameter_value"] == "2024-01-01T00:00:10Z"
