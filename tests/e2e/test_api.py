"""The resource API over real HTTP: auth, status codes, Status bodies, watch."""

from __future__ import annotations

import threading

import httpx
import pytest

from flowyard.errors import AlreadyExistsError, ConflictError, InvalidError, NotFoundError
from tests.support.server import RunningServer

JOBS = "/apis/batch/v1/namespaces/default/jobs"


def job(name: str, command: list[str], **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox", "command": command}],
                }
            },
            **spec,
        },
    }


def http(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"})


def test_every_route_needs_a_token_except_health(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    for path in (JOBS, "/apis", "/openapi.json", "/version", "/nope"):
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 401, path
        assert response.json()["kind"] == "Status"
        assert response.json()["reason"] == "Unauthorized"
    bad = httpx.get(f"{server.url}{JOBS}", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401


def test_credentials_file_is_private(server: RunningServer) -> None:
    assert (server.home / "credentials").stat().st_mode & 0o777 == 0o600


def test_crud_and_status_codes(server: RunningServer) -> None:
    with http(server) as c:
        created = c.post(JOBS, json=job("crud", ["true"], suspend=True))
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["metadata"]["uid"] and body["metadata"]["generation"] == 1
        assert body["spec"]["backoffLimit"] == 6  # defaulted as Kubernetes does
        again = c.post(JOBS, json=job("crud", ["true"]))
        assert again.status_code == 409 and again.json()["reason"] == "AlreadyExists"
        got = c.get(f"{JOBS}/crud").json()
        stale = dict(got, metadata=dict(got["metadata"], resourceVersion="1"))
        stale["metadata"]["labels"] = {"a": "b"}
        conflict = c.put(f"{JOBS}/crud", json=stale)
        assert conflict.status_code == 409 and conflict.json()["reason"] == "Conflict"
        patched = c.patch(
            f"{JOBS}/crud",
            json={"metadata": {"labels": {"team": "ml"}}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert patched.status_code == 200 and patched.json()["metadata"]["labels"] == {"team": "ml"}
        assert patched.json()["metadata"]["generation"] == 1
        listed = c.get(JOBS, params={"labelSelector": "team=ml"}).json()
        assert [i["metadata"]["name"] for i in listed["items"]] == ["crud"]
        assert listed["kind"] == "JobList"
        missing = c.get(f"{JOBS}/nope")
        assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"
        assert c.delete(f"{JOBS}/crud").status_code == 200
        assert c.get(f"{JOBS}/crud").status_code == 404


def test_invalid_objects_name_the_field(server: RunningServer) -> None:
    bad = job("bad", ["true"])
    bad["spec"]["backoffLimit"] = "six"  # type: ignore[index]
    with http(server) as c:
        response = c.post(JOBS, json=bad)
    assert response.status_code == 422
    status = response.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "spec.backoffLimit"
    assert "six" in status["message"]


def test_client_raises_the_error_tree(server: RunningServer) -> None:
    with server.client() as client:
        client.create(job("tree", ["true"], suspend=True))
        with pytest.raises(AlreadyExistsError):
            client.create(job("tree", ["true"]))
        with pytest.raises(NotFoundError):
            client.get("jobs", "absent")
        with pytest.raises(InvalidError):
            client.create(job("Bad_Name", ["true"]))
        current = client.get("job", "tree")
        current["metadata"]["resourceVersion"] = "1"
        with pytest.raises(ConflictError):
            client.update(current)
        client.delete("jobs", "tree")


def test_watch_streams_changes_in_order(server: RunningServer) -> None:
    seen: list[tuple[str, str]] = []
    with server.client() as client:
        rv = client.request("GET", JOBS).json()["metadata"]["resourceVersion"]
        ready = threading.Event()

        def follow() -> None:
            ready.set()
            for event in client.watch("jobs", resource_version=rv, timeout=10):
                name = event["object"]["metadata"]["name"]
                if name.startswith("watched"):
                    seen.append((event["type"], name))
                if event["type"] == "DELETED":
                    return

        with server.client() as writer:
            thread = threading.Thread(target=follow)
            thread.start()
            ready.wait()
            writer.create(job("watched", ["true"], suspend=True))
            writer.patch("jobs", "watched", {"metadata": {"labels": {"x": "y"}}})
            writer.delete("jobs", "watched")
            thread.join(15)
    assert seen[0] == ("ADDED", "watched")
    assert ("MODIFIED", "watched") in seen
    assert seen[-1] == ("DELETED", "watched")


def test_discovery_and_openapi(server: RunningServer) -> None:
    with http(server) as c:
        resources = c.get("/apis/batch/v1").json()["resources"]
        assert any(r["name"] == "jobs" and r["kind"] == "Job" for r in resources)
        doc = c.get("/openapi.json").json()
        assert "/apis/{group}/{version}/namespaces/{namespace}/{plural}" in doc["paths"]
