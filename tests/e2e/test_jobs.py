"""batch/v1 Job semantics, run for real through the server, controllers and executor."""

from __future__ import annotations

import time

import psutil

from flowyard.resources.conditions import get_condition
from tests.e2e.test_api import job
from tests.support.server import RunningServer


def wait_for(server: RunningServer, name: str, condition: str, timeout: float = 30) -> dict:
    with server.client() as client:
        return client.wait_for_condition("jobs", name, condition, timeout=timeout)


def test_job_runs_to_complete_with_logs_and_events(server: RunningServer) -> None:
    spec = job("hello", ["sh", "-c", 'echo "hello from $HOSTNAME"; echo oops >&2'])
    with server.client() as client:
        client.create(spec)
        done = wait_for(server, "hello", "Complete")
        assert done["status"]["succeeded"] == 1
        assert done["status"]["startTime"] and done["status"]["completionTime"]
        assert get_condition(done, "SuccessCriteriaMet")["status"] == "True"
        text = b"".join(client.logs("jobs", "hello")).decode()
        assert "hello from hello-" in text and "oops" in text
        events = client.list(
            "events", field_selector=f"involvedObject.uid={done['metadata']['uid']}"
        )
        reasons = {e["reason"] for e in events}
        assert {"SuccessfulCreate", "Completed"} <= reasons


def test_backoff_limit_fails_the_job(server: RunningServer) -> None:
    with server.client() as client:
        client.create(job("crash", ["sh", "-c", "exit 3"], backoffLimit=1))
        failed = wait_for(server, "crash", "Failed")
    assert failed["status"]["failed"] == 2
    assert get_condition(failed, "Failed")["reason"] == "BackoffLimitExceeded"


def test_active_deadline_kills_the_process_group(server: RunningServer, tmp_path) -> None:
    pidfile = tmp_path / "pid"
    script = f"sleep 300 & echo $! > {pidfile}; wait"
    with server.client() as client:
        client.create(job("hang", ["sh", "-c", script], activeDeadlineSeconds=1))
        failed = wait_for(server, "hang", "Failed")
    assert get_condition(failed, "Failed")["reason"] == "DeadlineExceeded"
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie"


def test_parallelism_and_completions(server: RunningServer) -> None:
    with server.client() as client:
        client.create(job("many", ["true"], completions=3, parallelism=2))
        done = wait_for(server, "many", "Complete")
    assert done["status"]["succeeded"] == 3


def test_indexed_job_gets_its_index(server: RunningServer, tmp_path) -> None:
    out = tmp_path / "indexes"
    out.mkdir()
    with server.client() as client:
        client.create(
            job(
                "indexed",
                ["sh", "-c", f"touch {out}/$JOB_COMPLETION_INDEX"],
                completions=3,
                parallelism=3,
                completionMode="Indexed",
            )
        )
        done = wait_for(server, "indexed", "Complete")
    assert done["status"]["completedIndexes"] == "0-2"
    assert sorted(p.name for p in out.iterdir()) == ["0", "1", "2"]


def test_suspend_and_resume(server: RunningServer) -> None:
    with server.client() as client:
        client.create(job("paused", ["true"], suspend=True))
        suspended = wait_for(server, "paused", "Suspended")
        assert suspended["status"].get("succeeded", 0) == 0
        client.patch("jobs", "paused", {"spec": {"suspend": False}})
        done = wait_for(server, "paused", "Complete")
    assert get_condition(done, "Suspended")["status"] == "False"


def test_ttl_after_finished_deletes_the_job(server: RunningServer) -> None:
    from flowyard.errors import NotFoundError

    with server.client() as client:
        client.create(job("shortlived", ["true"], ttlSecondsAfterFinished=0))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                client.get("jobs", "shortlived")
            except NotFoundError:
                return
            time.sleep(0.1)
    raise AssertionError("the finished Job was not deleted after its TTL")


def test_template_is_immutable(server: RunningServer) -> None:
    import pytest

    from flowyard.errors import InvalidError

    with server.client() as client:
        client.create(job("fixed", ["true"], suspend=True))
        with pytest.raises(InvalidError, match="immutable"):
            client.patch(
                "jobs",
                "fixed",
                {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [{"name": "main", "image": "x", "command": ["false"]}]
                            }
                        }
                    }
                },
            )
