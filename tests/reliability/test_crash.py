"""kill -9 of the control plane while Jobs run, twice in one run; a new server on the same
FLOWYARD_HOME must finish every Job correctly.

Checks: every Job ends Complete (right ``succeeded``) or Failed (``BackoffLimitExceeded``, right
``failed``); no Job is lost; no run succeeds more often than ``completions`` (each successful
run leaves one file); no process of a killed server outlives the run; the database passes
``PRAGMA integrity_check`` both as each crash left it and at the end.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from flowyard.resources.conditions import get_condition
from tests.reliability.helpers import job
from tests.support.server import RunningServer

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Plan:
    """One Job of the workload and how it must end."""

    name: str
    body: str  # shell code run by each attempt, after its start marker
    completions: int = 1
    parallelism: int = 1
    indexed: bool = False
    fails: bool = False

    def manifest(self, out: Path) -> dict[str, Any]:
        index = "$JOB_COMPLETION_INDEX" if self.indexed else "x"
        script = (
            f"touch {out}/{self.name}.start.$$; {self.body}; "
            f"touch {out}/{self.name}.done.{index}.$$"
        )
        spec: dict[str, Any] = {
            "completions": self.completions,
            "parallelism": self.parallelism,
            "backoffLimit": 1 if self.fails else 6,
        }
        if self.indexed:
            spec["completionMode"] = "Indexed"
        return job(self.name, ["sh", "-c", script], **spec)


PLANS = [
    *(Plan(f"short-{i}", "sleep 0.5") for i in range(6)),
    *(Plan(f"slow-{i}", "sleep 3") for i in range(6)),
    *(Plan(f"fail-{i}", "sleep 1; exit 1", fails=True) for i in range(4)),
    *(
        Plan(f"indexed-{i}", "sleep 2", completions=3, parallelism=3, indexed=True)
        for i in range(2)
    ),
    *(Plan(f"serial-{i}", "sleep 2", completions=2) for i in range(2)),
]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def descendants(server: RunningServer) -> dict[int, float]:
    """pid -> create time of every live process the server started (directly or below)."""
    assert server.process is not None
    try:
        children = psutil.Process(server.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return {}
    out = {}
    for child in children:
        try:
            out[child.pid] = child.create_time()
        except psutil.NoSuchProcess:
            continue
    return out


def in_flight(out: Path) -> set[str]:
    """Runs that wrote their start marker but not yet their done marker (by pid)."""
    started = {p.name.rsplit(".", 1)[1] for p in out.glob("*.start.*")}
    done = {p.name.rsplit(".", 1)[1] for p in out.glob("*.done.*")}
    return started - done


def integrity(home: Path) -> str:
    with sqlite3.connect(home / "flowyard.db") as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def still_alive(processes: dict[int, float]) -> list[int]:
    alive = []
    for pid, created in processes.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def crash(server: RunningServer, out: Path, seen: dict[int, float]) -> None:
    """kill -9 ``server`` once processes it started are mid-run; record them in ``seen``."""
    wait_until(lambda: len(in_flight(out)) >= 2 and descendants(server), 60, "runs in flight")
    seen.update(descendants(server))
    server.kill9()
    assert in_flight(out), "the crash did not catch any run in flight"
    assert integrity(server.home) == "ok"


def finished(server: RunningServer) -> list[dict[str, Any]]:
    with server.client() as client:
        return client.list("jobs")


def all_finished(server: RunningServer) -> bool:
    jobs = finished(server)
    return len(jobs) == len(PLANS) and all(
        any(
            c["type"] in ("Complete", "Failed") and c["status"] == "True"
            for c in (j.get("status") or {}).get("conditions", [])
        )
        for j in jobs
    )


def check_final_state(jobs: list[dict[str, Any]], out: Path) -> None:
    by_name = {j["metadata"]["name"]: j for j in jobs}
    assert sorted(by_name) == sorted(p.name for p in PLANS), "a Job was lost or duplicated"
    for plan in PLANS:
        status = by_name[plan.name]["status"]
        done = sorted(p.name for p in out.glob(f"{plan.name}.done.*"))
        if plan.fails:
            failed = get_condition(by_name[plan.name], "Failed")
            assert failed is not None and failed["status"] == "True", (plan.name, status)
            assert failed["reason"] == "BackoffLimitExceeded", (plan.name, status)
            assert status.get("failed") == 2, (plan.name, status)
            assert done == [], plan.name
            continue
        complete = get_condition(by_name[plan.name], "Complete")
        assert complete is not None and complete["status"] == "True", (plan.name, status)
        assert status.get("succeeded") == plan.completions, (plan.name, status)
        assert len(done) == plan.completions, f"{plan.name} succeeded too often: {done}"
        if plan.indexed:
            assert status.get("completedIndexes") == f"0-{plan.completions - 1}", status
            indexes = sorted(name.split(".")[2] for name in done)
            assert indexes == [str(i) for i in range(plan.completions)], done


def test_kill9_twice_while_jobs_run(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    env = {"FLOWYARD_JOB_BACKOFF_SECONDS": "0.2"}
    seen: dict[int, float] = {}
    first = RunningServer(home, extra_env=env).start()
    try:
        with first.client() as client:
            for plan in PLANS:
                client.create(plan.manifest(out))
        crash(first, out, seen)
        second = RunningServer(home, port=first.port, extra_env=env).start()
        try:
            with second.client() as client:
                assert len(client.list("jobs")) == len(PLANS), "a Job was lost in the crash"
            crash(second, out, seen)
        finally:
            second.stop()
        third = RunningServer(home, port=first.port, extra_env=env).start()
        try:
            wait_until(lambda: all_finished(third), 120, "every Job to finish")
            check_final_state(finished(third), out)
            wait_until(lambda: not descendants(third), 30, "the last server's runs to exit")
        finally:
            third.stop()
    finally:
        first.stop()
    assert still_alive(seen) == [], "processes of a killed server are still running"
    assert integrity(home) == "ok"
