"""The `flowyard` command against a real server, as a user types it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.server import RunningServer, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("cli-home")).start()
    yield running
    running.stop()


def fy(
    server: RunningServer | None, *args: str, stdin: str | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = (
        server.env
        if server
        else {
            "PATH": "/usr/bin:/bin",
            "FLOWYARD_HOME": str(home),
            "FLOWYARD_URL": f"http://127.0.0.1:{free_port()}",
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "flowyard.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_quickstart_flow(server: RunningServer) -> None:
    applied = fy(server, "apply", "-f", str(ROOT / "examples/quickstart-job.yaml"))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "job.batch/pi created"
    waited = fy(server, "wait", "job/pi", "--for=condition=Complete", "--timeout=60s")
    assert waited.returncode == 0, waited.stderr
    assert "3.14159265358979" in fy(server, "logs", "job/pi").stdout
    table = fy(server, "get", "jobs").stdout
    assert "NAME" in table and "COMPLETIONS" in table and "pi" in table and "1/1" in table
    again = fy(server, "apply", "-f", str(ROOT / "examples/quickstart-job.yaml"))
    assert again.stdout.strip() == "job.batch/pi unchanged"
    described = fy(server, "describe", "job", "pi").stdout
    assert "Conditions:" in described and "Complete" in described
    assert "SuccessfulCreate" in described
    as_yaml = yaml.safe_load(fy(server, "get", "job", "pi", "-o", "yaml").stdout)
    assert as_yaml["status"]["succeeded"] == 1


def test_multi_document_stdin_and_short_names(server: RunningServer) -> None:
    docs = "\n---\n".join(
        yaml.safe_dump(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": n},
                "spec": {
                    "suspend": True,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "x", "command": ["true"]}],
                        }
                    },
                },
            }
        )
        for n in ("one", "two")
    )
    result = fy(server, "apply", "-f", "-", stdin=docs)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["job.batch/one created", "job.batch/two created"]
    for kind in ("job", "jobs", "Job", "jobs.batch"):
        assert "one" in fy(server, "get", kind).stdout
    assert fy(server, "get", "job", "one", "-o", "name").stdout.strip() == "job/one"
    deleted = fy(server, "delete", "job", "one", "two")
    assert deleted.returncode == 0
    assert 'job.batch "one" deleted' in deleted.stdout


def test_errors_and_exit_codes(server: RunningServer, tmp_path: Path) -> None:
    missing = fy(server, "get", "job", "absent")
    assert missing.returncode == 1 and "NotFound" in missing.stderr
    unknown = fy(server, "get", "widgets")
    assert unknown.returncode == 1 and 'resource type "widgets"' in unknown.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: batch/v1\nkind: Job\nmetadata: {name: x\n")
    parsed = fy(server, "apply", "-f", str(bad))
    assert parsed.returncode == 1 and "error parsing" in parsed.stderr
    assert fy(server, "get").returncode == 2  # usage
    timeout = fy(server, "wait", "job/absent", "--for=condition=Complete", "--timeout=1s")
    assert timeout.returncode == 1


def test_server_not_running_says_how_to_start(tmp_path: Path) -> None:
    result = fy(None, "get", "jobs", home=tmp_path)
    assert result.returncode == 1
    assert "flowyard up" in result.stderr
