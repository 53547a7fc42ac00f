"""The bad-input corpus, POSTed over REST and applied with the CLI, against one real server.

Every input must be answered with the expected 4xx and a message that names the problem; the CLI
must exit 1 with a helpful message and no traceback. Afterwards the server must be healthy, must
never have answered 5xx, and the Job stored before the corpus ran must be unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import yaml

from tests.reliability.corpus_cases import Case, corpus_cases, generated_cases
from tests.reliability.helpers import http, job, run_cli, server_errors_logged
from tests.support.server import RunningServer

CASES = corpus_cases()
KEEPER = "keeper"
# Every status the server answered to a corpus input, for the final no-5xx check.
ANSWERED: list[tuple[str, int]] = []


@pytest.fixture(scope="module")
def generated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generated")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server holding one finished Job, and that Job as stored before the corpus ran."""
    running = RunningServer(tmp_path_factory.mktemp("bad-input-home")).start()
    try:
        with running.client() as client:
            client.create(job(KEEPER, ["sh", "-c", "echo kept"]))
            before = client.wait_for_condition("jobs", KEEPER, "Complete", timeout=60)
        yield {"server": running, "before": before}
    finally:
        running.stop()


def _all_cases(generated_dir: Path) -> list[Case]:
    return CASES + generated_cases(generated_dir)


def _cleanup(running: RunningServer, case: Case) -> None:
    """Delete what a wrongly accepted input created, so that later checks stay meaningful."""
    try:
        doc = yaml.safe_load(case.file.read_bytes())
        name = doc["metadata"]["name"]
        ns = doc["metadata"].get("namespace", "default")
    except Exception:  # best effort: the inputs are bad by design
        return
    if name == KEEPER:
        return
    with http(running) as c:
        c.delete(f"/apis/batch/v1/namespaces/{ns}/jobs/{name}")


def _post(running: RunningServer, case: Case) -> tuple[int, dict[str, Any] | str]:
    with http(running) as c:
        response = c.post(
            case.path, content=case.file.read_bytes(), headers={"Content-Type": case.content_type}
        )
    ANSWERED.append((case.name, response.status_code))
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def _check_rest(running: RunningServer, case: Case) -> None:
    status, body = _post(running, case)
    if 200 <= status < 300:
        _cleanup(running, case)
    assert status < 500, f"{case.name}: the server answered {status}: {body}"
    assert isinstance(body, dict) and body.get("kind") == "Status", f"{case.name}: {body}"
    assert (status, case.message in body["message"]) == (case.status, True), (
        f"{case.name}: wanted {case.status} with {case.message!r}, got {status}: "
        f"{body['message'][:500]}"
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rest_rejects(server: dict[str, Any], case: Case) -> None:
    _check_rest(server["server"], case)


def test_rest_rejects_ten_megabytes(server: dict[str, Any], generated_dir: Path) -> None:
    for case in generated_cases(generated_dir):
        _check_rest(server["server"], case)


@pytest.fixture(scope="module")
def cli_results(server: dict[str, Any], generated_dir: Path) -> dict[str, CompletedProcess[str]]:
    """Every case applied with the CLI (a few at a time: each is a fresh interpreter)."""
    running = server["server"]
    cases = _all_cases(generated_dir)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = pool.map(
            lambda case: run_cli(running, "apply", "-f", str(case.file), *case.cli_args), cases
        )
        return {case.name: result for case, result in zip(cases, results, strict=True)}


ALL_NAMES = [c.name for c in CASES] + ["ten-megabytes.yaml"]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_cli_rejects(
    server: dict[str, Any], generated_dir: Path, cli_results: dict[str, Any], name: str
) -> None:
    case = next(c for c in _all_cases(generated_dir) if c.name == name)
    result = cli_results[name]
    output = result.stderr + result.stdout
    if result.returncode == 0:
        _cleanup(server["server"], case)
    assert "Traceback" not in output, f"{name}: the CLI crashed:\n{output[-3000:]}"
    assert result.returncode == 1, f"{name}: exit code {result.returncode}:\n{output[-2000:]}"
    assert case.cli_message in output, f"{name}: wanted {case.cli_message!r} in:\n{output[-2000:]}"


@pytest.mark.parametrize("patch", [{"metadata": [None, None]}, {"metadata": "x"}, {"spec": [1]}])
@pytest.mark.parametrize("suffix", ["", "/status"])
def test_rest_rejects_malformed_patch(server: dict[str, Any], patch: Any, suffix: str) -> None:
    """A merge patch whose metadata is not an object (found by schemathesis' coverage phase)."""
    path = f"/apis/batch/v1/namespaces/default/jobs/{KEEPER}{suffix}"
    with http(server["server"]) as c:
        response = c.patch(
            path, json=patch, headers={"Content-Type": "application/merge-patch+json"}
        )
    ANSWERED.append((f"PATCH {path}", response.status_code))
    assert 400 <= response.status_code < 500, response.text
    message = response.json()["message"]
    assert any(field in message for field in ("metadata", "spec", "status")), message


def test_server_is_healthy_and_unchanged(server: dict[str, Any]) -> None:
    """Runs last: no 5xx, no logged crash, the stored Job untouched and nothing else stored."""
    running: RunningServer = server["server"]
    assert running.process is not None and running.process.poll() is None, running.output()
    with http(running) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        after = c.get(f"/apis/batch/v1/namespaces/default/jobs/{KEEPER}").json()
        names = [i["metadata"]["name"] for i in c.get("/apis/batch/v1/jobs").json()["items"]]
    assert [answer for answer in ANSWERED if answer[1] >= 500] == []
    assert server_errors_logged(running) == []
    assert after == server["before"]
    assert names == [KEEPER]
