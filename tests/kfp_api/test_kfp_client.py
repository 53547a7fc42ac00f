"""The real ``kfp.Client`` against a real flowyard server."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import kfp_server_api
import pytest

from tests.kfp_api import pipelines
from tests.support.server import RunningServer


def _api_error(exc: kfp_server_api.ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def test_healthz_and_auth(server: RunningServer, kfp_client: Any) -> None:
    assert kfp_client.get_kfp_healthz().multi_user is False
    assert httpx.get(f"{server.url}/apis/v2beta1/runs").status_code == 401
    # kfp.Client itself calls healthz (with retries) on construction, so swap the token on a
    # working client: every later call then carries a bad one.
    kfp_client._existing_config.api_key["authorization"] = "not-the-token"
    try:
        with pytest.raises(kfp_server_api.ApiException) as err:
            kfp_client.list_runs()
    finally:
        kfp_client._existing_config.api_key["authorization"] = server.token
    assert err.value.status == 401


def test_run_from_func_completes_with_task_details(server: RunningServer, kfp_client: Any) -> None:
    result = kfp_client.create_run_from_pipeline_func(
        pipelines.adder, arguments={"x": 3, "y": 4}, run_name="add three and four"
    )
    run = kfp_client.wait_for_run_completion(result.run_id, timeout=120, sleep_duration=1)
    assert run.state == "SUCCEEDED"
    assert run.display_name == "add three and four"
    assert run.runtime_config.parameters == {"x": 3, "y": 4}
    tasks = {t.display_name: t for t in run.run_details.task_details}
    assert tasks["add"].state == "SUCCEEDED"
    # The raw JSON keeps the parameter values KFP's typed model has no field for.
    raw = httpx.get(
        f"{server.url}/apis/v2beta1/runs/{result.run_id}",
        headers={"Authorization": f"Bearer {server.token}"},
    ).json()
    add = next(t for t in raw["run_details"]["task_details"] if t["display_name"] == "add")
    assert add["inputs"]["a"] == {"parameter_value": 3}
    assert add["outputs"]["Output"] == {"parameter_value": 7}
    experiment = kfp_client.get_experiment(experiment_id=run.experiment_id)
    assert experiment.display_name == "Default"
    # The same run is a flowyard Run resource.
    env = {**os.environ, "FLOWYARD_URL": server.url, "FLOWYARD_TOKEN": server.token}
    out = subprocess.run(
        [sys.executable, "-m", "flowyard.cli.main", "get", "runs", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    uids = {item["metadata"]["uid"] for item in json.loads(out)["items"]}
    assert result.run_id in uids


def test_upload_pipeline_versions_and_run_pipeline(kfp_client: Any, tmp_path: Path) -> None:
    package = pipelines.compile_to(pipelines.adder, tmp_path / "adder.yaml")
    pipeline = kfp_client.upload_pipeline(str(package), pipeline_name="adder-uploaded")
    with pytest.raises(kfp_server_api.ApiException) as dup:
        kfp_client.upload_pipeline(str(package), pipeline_name="adder-uploaded")
    assert dup.value.status == 409
    body = _api_error(dup.value)
    assert set(body) == {"error", "code", "message", "details"} and body["code"] == 6
    assert kfp_client.get_pipeline_id("adder-uploaded") == pipeline.pipeline_id

    archive = tmp_path / "adder.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(package, "pipeline.yaml")
    v2 = kfp_client.upload_pipeline_version(
        str(archive), pipeline_version_name="v2", pipeline_id=pipeline.pipeline_id
    )
    tgz = tmp_path / "adder.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(package, "pipeline.yaml")
    kfp_client.upload_pipeline_version(
        str(tgz), pipeline_version_name="v3", pipeline_name="adder-uploaded"
    )
    versions = kfp_client.list_pipeline_versions(pipeline.pipeline_id, sort_by="name desc")
    assert [v.display_name for v in versions.pipeline_versions] == ["v3", "v2", "adder-uploaded"]
    got = kfp_client.get_pipeline_version(pipeline.pipeline_id, v2.pipeline_version_id)
    assert got.pipeline_spec["pipelineInfo"]["name"] == "adder"

    experiment = kfp_client.create_experiment("uploads")
    run = kfp_client.run_pipeline(
        experiment_id=experiment.experiment_id,
        job_name="from version",
        params={"x": 10, "y": 5},
        pipeline_id=pipeline.pipeline_id,
        version_id=v2.pipeline_version_id,
    )
    done = kfp_client.wait_for_run_completion(run.run_id, timeout=120, sleep_duration=1)
    assert done.state == "SUCCEEDED"
    assert done.pipeline_version_reference.pipeline_version_id == v2.pipeline_version_id
    assert done.experiment_id == experiment.experiment_id

    with pytest.raises(kfp_server_api.ApiException) as busy:
        kfp_client.delete_pipeline(pipeline.pipeline_id)
    assert busy.value.status == 400 and _api_error(busy.value)["code"] == 9
    for v in kfp_client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions:
        kfp_client.delete_pipeline_version(pipeline.pipeline_id, v.pipeline_version_id)
    kfp_client.delete_pipeline(pipeline.pipeline_id)
    assert kfp_client.get_pipeline_id("adder-uploaded") is None


def test_experiments(kfp_client: Any) -> None:
    exp = kfp_client.create_experiment("team a", description="first")
    again = kfp_client.create_experiment("team a")  # kfp returns the existing one
    assert again.experiment_id == exp.experiment_id
    kfp_client.create_experiment("team b")
    names = {e.display_name for e in kfp_client.list_experiments(page_size=100).experiments}
    assert {"team a", "team b"} <= names
    kfp_client.archive_experiment(exp.experiment_id)
    assert kfp_client.get_experiment(experiment_id=exp.experiment_id).storage_state == "ARCHIVED"
    kfp_client.unarchive_experiment(exp.experiment_id)
    assert kfp_client.get_experiment(experiment_name="team a").storage_state == "AVAILABLE"
    kfp_client.delete_experiment(exp.experiment_id)
    with pytest.raises(kfp_server_api.ApiException) as gone:
        kfp_client.get_experiment(experiment_id=exp.experiment_id)
    assert gone.value.status == 404


def test_package_run_terminate_and_delete(kfp_client: Any, tmp_path: Path) -> None:
    package = pipelines.compile_to(pipelines.sleeper, tmp_path / "sleeper.yaml")
    result = kfp_client.create_run_from_pipeline_package(
        str(package), arguments={"seconds": 60}, run_name="sleepy"
    )
    deadline = time.monotonic() + 60
    while kfp_client.get_run(result.run_id).state != "RUNNING":
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.3)
    kfp_client.terminate_run(result.run_id)
    while kfp_client.get_run(result.run_id).state != "CANCELED":
        assert time.monotonic() < deadline, "the run was not canceled"
        time.sleep(0.3)
    kfp_client.archive_run(result.run_id)
    assert kfp_client.get_run(result.run_id).storage_state == "ARCHIVED"
    kfp_client.unarchive_run(result.run_id)
    kfp_client.delete_run(result.run_id)
    with pytest.raises(kfp_server_api.ApiException) as gone:
        kfp_client.get_run(result.run_id)
    assert gone.value.status == 404 and _api_error(gone.value)["code"] == 5


def test_read_artifact(server: RunningServer, kfp_client: Any) -> None:
    result = kfp_client.create_run_from_pipeline_func(
        pipelines.writer, arguments={"text": "artifact body"}
    )
    run = kfp_client.wait_for_run_completion(result.run_id, timeout=120, sleep_duration=1)
    assert run.state == "SUCCEEDED"
    task = next(t for t in run.run_details.task_details if t.display_name == "write-text")
    resp = httpx.get(
        f"{server.url}/apis/v2beta1/runs/{run.run_id}/nodes/{task.task_id}/artifacts/out:read",
        headers={"Authorization": f"Bearer {server.token}"},
    )
    assert resp.status_code == 200, resp.text
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(resp.json()["data"]))) as tf:
        member = tf.getmembers()[0]
        handle = tf.extractfile(member)
        assert handle is not None and handle.read() == b"artifact body"


def test_recurring_run_fires_and_disables(kfp_client: Any, tmp_path: Path) -> None:
    package = pipelines.compile_to(pipelines.adder, tmp_path / "adder.yaml")
    experiment = kfp_client.create_experiment("scheduled")
    rr = kfp_client.create_recurring_run(
        experiment_id=experiment.experiment_id,
        job_name="every second",
        interval_second=1,
        max_concurrency=2,
        no_catchup=True,
        pipeline_package_path=str(package),
        params={"x": 1, "y": 1},
    )
    assert rr.status == "ENABLED" and rr.trigger.periodic_schedule.interval_second == "1"

    def fired() -> list[Any]:
        runs = kfp_client.list_runs(experiment_id=experiment.experiment_id, page_size=100)
        return [r for r in runs.runs or [] if r.recurring_run_id == rr.recurring_run_id]

    deadline = time.monotonic() + 60
    while len(fired()) < 2:
        assert time.monotonic() < deadline, "the schedule did not fire twice"
        time.sleep(0.5)
    kfp_client.disable_recurring_run(rr.recurring_run_id)
    assert kfp_client.get_recurring_run(rr.recurring_run_id).status == "DISABLED"
    time.sleep(1.5)  # a fire in flight when disabling may still land
    count = len(fired())
    time.sleep(2.5)
    assert len(fired()) == count
    listed = kfp_client.list_recurring_runs(experiment_id=experiment.experiment_id)
    assert [r.recurring_run_id for r in listed.recurring_runs] == [rr.recurring_run_id]
    kfp_client.delete_recurring_run(rr.recurring_run_id)
    with pytest.raises(kfp_server_api.ApiException):
        kfp_client.get_recurring_run(rr.recurring_run_id)
