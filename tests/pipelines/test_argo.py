"""KFP v1 / Argo Workflows through a real server: Argo's examples, a kfp<2-shaped workflow, and
the KFP v2 backend's compiled workflows (refused with a pointer to the IR)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.server import RunningServer

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
EXAMPLES = REFERENCE / "argo-workflows" / "examples"
KFP_V2_COMPILED = REFERENCE / "kfp" / "compiled-argo-workflows"
V1_SHAPE = Path(__file__).parent / "data" / "kfp_v1_mnist_shape.yaml"

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="upstream reference data missing")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("argo-home")).start()
    yield running
    running.stop()


def wait_final(server: RunningServer, name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    with server.client() as client:
        while True:
            wf = client.get("workflows", name)
            if (wf.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Error"):
                return wf
            assert time.monotonic() < deadline, f"{name} still {wf.get('status', {}).get('phase')}"
            time.sleep(0.1)


def test_argo_examples_run_with_apply(server: RunningServer) -> None:
    done = server.cli("apply", "-f", str(EXAMPLES))
    assert done.returncode == 0, done.stdout + done.stderr
    names = [
        line.split()[0].split("/")[1] for line in done.stdout.splitlines() if "created" in line
    ]
    assert len(names) == len(list(EXAMPLES.glob("*.yaml")))
    results = {}
    for name in names:
        wf = wait_final(server, name)
        results[wf["metadata"]["generateName"]] = wf
    expected_failures = {"exit-handlers-"}  # the example fails on purpose
    for prefix, wf in results.items():
        want = "Failed" if prefix in expected_failures else "Succeeded"
        assert wf["status"]["phase"] == want, (prefix, wf["status"].get("message"))
    nodes = {n["displayName"]: n for n in results["artifact-passing-"]["status"]["nodes"].values()}
    assert nodes["consume-artifact"]["outputs"]["result"] == "hello world"
    nodes = {n["displayName"]: n for n in results["exit-handlers-"]["status"]["nodes"].values()}
    assert nodes["cry"]["phase"] == "Succeeded" and nodes["celebrate"]["phase"] == "Skipped"
    assert "Failed" in nodes["notify"]["outputs"]["result"]
    nodes = {n["displayName"]: n for n in results["dag-diamond-"]["status"]["nodes"].values()}
    assert nodes["D"]["startedAt"] >= nodes["B"]["finishedAt"]
    loops = [n for n in results["loops-dag-"]["status"]["nodes"].values() if n["type"] == "Pod"]
    assert sorted(n["outputs"]["result"] for n in loops) == ["A", "C", "bar", "baz", "foo"]


def test_kfp_v1_workflow_runs_with_flowyard_run(server: RunningServer, tmp_path: Path) -> None:
    done = server.cli("run", str(V1_SHAPE), "-p", f"marker-dir={tmp_path}", "--name", "mnist")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "workflow/mnist Succeeded" in done.stdout
    assert (tmp_path / "prepare-count").read_text().strip() == "2"  # retried once
    assert (tmp_path / "deployed").read_text().strip() == "deploying best of [1.2, 0.12]" or (
        "deploying best of [1.2000000000000002, 0.12]" in (tmp_path / "deployed").read_text()
    )
    assert (tmp_path / "exit-status").read_text().strip() == "workflow Succeeded"
    described = server.cli("describe", "workflow", "mnist")
    assert "train(1:0.01)" in described.stdout
    logs = server.cli("logs", "workflow/mnist", "-c", "train_1_0.01_")
    assert "trained with lr 0.01" in logs.stdout, logs.stderr


def test_failed_workflow_exit_code_and_logs_hint(server: RunningServer) -> None:
    done = server.cli("run", str(EXAMPLES / "exit-handlers.yaml"), "--name", "fails")
    assert done.returncode == 1
    assert "workflow/fails Failed" in done.stdout
    assert "flowyard logs workflow/fails -c" in done.stdout
    logs = server.cli("logs", "workflow/fails", "-c", "fails")
    assert "intentional failure" in logs.stdout


def test_kfp_v2_backend_workflows_are_refused_with_a_pointer_to_ir(server: RunningServer) -> None:
    files = sorted(KFP_V2_COMPILED.glob("*.yaml"))
    assert files
    for path in files:
        done = server.cli("apply", "-f", str(path))
        assert done.returncode == 1, path
        assert "compiled by the KFP v2 backend" in done.stderr, done.stderr
        assert "kfp.compiler.Compiler" in done.stderr


def test_shutdown_terminate_kills_pods(server: RunningServer, tmp_path: Path) -> None:
    wf = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "sleepy"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "container": {
                        "image": "busybox",
                        "command": [
                            "sh",
                            "-c",
                            f"touch {tmp_path}/started; sleep 60; touch {tmp_path}/end",
                        ],
                    },
                }
            ],
        },
    }
    with server.client() as client:
        client.create(wf)
        deadline = time.monotonic() + 30
        while not (tmp_path / "started").exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        client.patch("workflows", "sleepy", {"spec": {"shutdown": "Terminate"}})
    final = wait_final(server, "sleepy", timeout=20)
    assert final["status"]["phase"] == "Failed"
    time.sleep(0.5)
    assert not (tmp_path / "end").exists()


def test_unknown_template_reference_is_refused(server: RunningServer) -> None:
    doc = yaml.safe_load((EXAMPLES / "steps.yaml").read_text())
    doc["spec"]["templates"][0]["steps"][0][0]["template"] = "nope"
    from flowyard.errors import InvalidError

    with server.client() as client, pytest.raises(InvalidError) as caught:
        client.create(doc)
    assert "'nope' is not defined" in str(caught.value)
