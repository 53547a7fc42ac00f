"""schemathesis against the OpenAPI document of a real running server: no operation may answer
5xx (check ``not_a_server_error``).

The document's resource routes are generic (``/apis/{group}/{version}/.../{plural}``); fuzzing
them as free strings would only ever reach "404 unknown kind". So the copy handed to schemathesis
pins ``group``, ``version`` and ``plural`` to what the server's discovery lists (plus one unknown
plural), leaves ``namespace``, ``name``, query parameters and bodies to the fuzzer, and describes
the body's metadata so generated objects get past the first checks. ``watch`` and ``follow`` are
dropped: they open streams that only end on a timeout (tests/e2e covers them).

Bounded for a 2-core machine: the examples and fuzzing phases, ``MAX_EXAMPLES`` cases per
operation, one worker (two tripped an internal schemathesis error), a fixed seed. The coverage
phase alone takes ~90 s here; what it found beyond fuzzing (a list as ``metadata`` in a PATCH) is
pinned by a regression test in test_bad_input.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.helpers import http, server_errors_logged
from tests.support.server import RunningServer

SEED = 20261123
MAX_EXAMPLES = 30
STREAMING = {"watch", "follow"}
_BODY = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "generateName": {"type": "string"},
                "resourceVersion": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                "finalizers": {"type": "array", "items": {"type": "string"}},
                "ownerReferences": {"type": "array", "items": {"type": "object"}},
            },
        },
        "spec": {"type": "object"},
        "status": {"type": "object"},
    },
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("fuzz-home")).start()
    yield running
    running.stop()


def _discovery(server: RunningServer) -> dict[str, list[str]]:
    """{"core": core plurals, "groups": group names, "versions": ..., "plurals": group plurals}"""
    with http(server) as c:
        core = [r["name"] for r in c.get("/api/v1").json()["resources"]]
        groups, versions, plurals = set(), set(), set()
        for group in c.get("/apis").json()["groups"]:
            groups.add(group["name"])
            for version in group["versions"]:
                versions.add(version["version"])
                listing = c.get(f"/apis/{version['groupVersion']}").json()
                plurals.update(r["name"] for r in listing["resources"] if "/" not in r["name"])
    return {
        "core": sorted(core),
        "groups": sorted(groups),
        "versions": sorted(versions),
        "plurals": sorted(plurals),
    }


def pinned_schema(document: dict[str, Any], found: dict[str, list[str]]) -> dict[str, Any]:
    """A copy of ``document`` whose kind-selecting path parameters are enums (see module doc)."""
    doc = json.loads(json.dumps(document))
    for path, operations in doc["paths"].items():
        core = path.startswith("/api/")
        enums = {
            "group": found["groups"],
            "version": ["v1"] if core else found["versions"],
            "plural": [*(found["core"] if core else found["plurals"]), "nosuchthings"],
        }
        for operation in operations.values():
            params = [p for p in operation.get("parameters", []) if p["name"] not in STREAMING]
            for param in params:
                if param["in"] == "path" and param["name"] in enums:
                    param["schema"] = {"type": "string", "enum": enums[param["name"]]}
            operation["parameters"] = params
            for media in operation.get("requestBody", {}).get("content", {}).values():
                media["schema"] = _BODY
    return doc


def test_no_operation_answers_5xx(server: RunningServer, tmp_path: Path) -> None:
    with http(server) as c:
        response = c.get("/openapi.json")
    assert response.status_code == 200, response.text
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(pinned_schema(response.json(), _discovery(server))))
    st = Path(sys.executable).with_name("st")
    command = [
        str(st), "run", str(schema_file),
        "--url", server.url,
        "--header", f"Authorization: Bearer {server.token}",
        "--checks", "not_a_server_error",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--phases", "examples,fuzzing",
        "--workers", "1",
        "--request-timeout", "20",
        "--suppress-health-check", "all",
        "--no-shrink",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env={**server.env, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    assert server_errors_logged(server) == [], server.output()
