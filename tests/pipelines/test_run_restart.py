"""kill -9 of the control plane in the middle of a pipeline run, then a restart: the run resumes
from its stored snapshot, adopts the step that was running, and no step runs twice."""

from __future__ import annotations

from pathlib import Path

from tests.pipelines import e2e_pipelines as pipes
from tests.pipelines.conftest import kill9_while_step_runs
from tests.support.server import RunningServer


def test_run_survives_kill_9_of_the_server(tmp_path: Path) -> None:
    server = RunningServer(tmp_path / "home").start()
    markers = tmp_path / "markers"
    markers.mkdir()
    try:
        with server.client() as client:
            result = client.create_run_from_pipeline_func(
                pipes.chain,
                arguments={"marker_dir": str(markers), "seconds": 2.0},
                enable_caching=False,
            )
        kill9_while_step_runs(server, markers, "two")
        with server.client() as client:
            run = client.wait_for_run_completion(result.run_name, timeout=60)
    finally:
        server.stop()
    assert run["status"]["state"] == "SUCCEEDED", run["status"].get("error")
    assert run["status"]["outputs"]["parameters"] == {"Output": "three"}
    for name in ("one", "two", "three"):
        assert len((markers / f"{name}.start").read_text().splitlines()) == 1, name
        assert len((markers / f"{name}.end").read_text().splitlines()) == 1, name
