"""Status rules as pure functions: conditions, restart policy, success per kind."""

from __future__ import annotations

from typing import Any

import pytest

from flowyard.training import status as st
from flowyard.training.status import ReplicaCounts


def types(status: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["type"], c["status"]) for c in status["conditions"]]


def test_condition_updates_follow_upstream() -> None:
    status: dict[str, Any] = {}
    st.update_job_conditions(status, "Created", True, "PyTorchJobCreated", "created")
    st.update_job_conditions(status, "Running", True, "PyTorchJobRunning", "running")
    assert not st.update_job_conditions(status, "Running", True, "PyTorchJobRunning", "running")
    st.update_job_conditions(status, "Restarting", True, "PyTorchJobRestarting", "restarting")
    assert types(status) == [("Created", "True"), ("Restarting", "True")]
    st.update_job_conditions(status, "Running", True, "PyTorchJobRunning", "running")
    assert types(status) == [("Created", "True"), ("Running", "True")]
    st.update_job_conditions(status, "Failed", True, "PyTorchJobFailed", "failed")
    assert types(status) == [("Created", "True"), ("Running", "False"), ("Failed", "True")]
    assert not st.update_job_conditions(status, "Succeeded", True, "X", "after failure")
    assert status["conditions"][-1]["type"] == "Failed"  # the State column


@pytest.mark.parametrize(
    ("policy", "code", "restart"),
    [
        ("Never", 137, False),
        ("OnFailure", 1, True),
        ("Always", 1, True),
        ("ExitCode", 1, False),
        ("ExitCode", 127, False),
        ("ExitCode", 128, True),
        ("ExitCode", 137, True),
        ("ExitCode", 255, True),
        ("ExitCode", None, True),
    ],
)
def test_restart_policy(policy: str, code: int | None, restart: bool) -> None:
    assert st.should_restart(policy, code) is restart


def test_success_rules() -> None:
    ok = ReplicaCounts(succeeded=1, succeeded_indexes=frozenset({0}))
    running = ReplicaCounts(active=1)
    both = {"Master": 1, "Worker": 2}
    assert st.job_succeeded("PyTorchJob", {}, both, {"Master": ok, "Worker": running})
    assert not st.job_succeeded("PyTorchJob", {}, {"Worker": 2}, {"Worker": ok})
    assert st.job_succeeded("PyTorchJob", {"elasticPolicy": {}}, {"Worker": 2}, {"Worker": ok})
    assert st.job_succeeded("XGBoostJob", {}, both, {"Master": ok})
    assert st.job_succeeded("MPIJob", {}, {"Launcher": 1, "Worker": 2}, {"Launcher": ok})
    tf = {"Worker": 2}
    assert st.job_succeeded("TFJob", {"successPolicy": ""}, tf, {"Worker": ok})
    assert not st.job_succeeded("TFJob", {"successPolicy": "AllWorkers"}, tf, {"Worker": ok})
    worker1 = ReplicaCounts(succeeded=1, succeeded_indexes=frozenset({1}))
    assert not st.job_succeeded("TFJob", {"successPolicy": ""}, tf, {"Worker": worker1})
    assert not st.job_succeeded("TFJob", {}, {"Chief": 1, "Worker": 2}, {"Worker": ok})


def test_messages() -> None:
    msgs = st.messages("TFJob", "a", "ns")
    assert msgs["Running"] == "TFJob ns/a is running."
    assert st.messages("PyTorchJob", "a", "ns")["Succeeded"] == (
        "PyTorchJob a is successfully completed."
    )
    assert st.failed_message("PyTorchJob", "a", "ns", 1, "Worker", True) == (
        'job "a" is failing because "Worker" replica(s) failed.'
    )
