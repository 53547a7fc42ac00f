"""kill -9 of the control plane in the middle of an Argo Workflow, then a restart: the workflow
is rebuilt from its stored status, adopts the pod that was running, passes its output on, and
no step runs twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.pipelines.conftest import kill9_while_step_runs
from tests.support.server import RunningServer


def _step(markers: Path, name: str, seconds: float) -> dict[str, Any]:
    """A pod that leaves start/end markers and outputs its name + its input ``prev``."""
    script = (
        f"echo $$ >> {markers}/{name}.start; sleep {seconds}; "
        f"echo done >> {markers}/{name}.end; echo {name}{{{{inputs.parameters.prev}}}} > /tmp/out"
    )
    return {
        "name": name,
        "inputs": {"parameters": [{"name": "prev"}]},
        "container": {"image": "busybox", "command": ["sh", "-c", script]},
        "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/out"}}]},
    }


def _workflow(markers: Path) -> dict[str, Any]:
    templates = [_step(markers, name, 2.0) for name in ("one", "two", "three")]
    dag = {
        "name": "main",
        "dag": {
            "tasks": [
                {
                    "name": "one",
                    "template": "one",
                    "arguments": {"parameters": [{"name": "prev", "value": "-"}]},
                },
                {
                    "name": "two",
                    "template": "two",
                    "dependencies": ["one"],
                    "arguments": {
                        "parameters": [
                            {"name": "prev", "value": "{{tasks.one.outputs.parameters.out}}"}
                        ]
                    },
                },
                {
                    "name": "three",
                    "template": "three",
                    "dependencies": ["two"],
                    "arguments": {
                        "parameters": [
                            {"name": "prev", "value": "{{tasks.two.outputs.parameters.out}}"}
                        ]
                    },
                },
            ]
        },
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "survivor"},
        "spec": {"entrypoint": "main", "templates": [dag, *templates]},
    }


def test_workflow_survives_kill_9_of_the_server(tmp_path: Path) -> None:
    server = RunningServer(tmp_path / "home").start()
    markers = tmp_path / "markers"
    markers.mkdir()
    try:
        with server.client() as client:
            client.create(_workflow(markers))
        kill9_while_step_runs(server, markers, "two")
        deadline = time.monotonic() + 60
        with server.client() as client:
            while True:
                wf = client.get("workflows", "survivor")
                if (wf.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Error"):
                    break
                assert time.monotonic() < deadline, wf.get("status", {}).get("phase")
                time.sleep(0.1)
    finally:
        server.stop()
    status = wf["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    nodes = {n["displayName"]: n for n in status["nodes"].values()}
    assert nodes["three"]["outputs"]["parameters"] == [{"name": "out", "value": "threetwoone-"}]
    assert nodes["two"]["attempt"] == 1
    for name in ("one", "two", "three"):
        assert len((markers / f"{name}.start").read_text().splitlines()) == 1, name
        assert len((markers / f"{name}.end").read_text().splitlines()) == 1, name
