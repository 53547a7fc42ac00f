"""Shared helpers for the training tests: build jobs, admit them, drive a runner to the end."""

from __future__ import annotations

import copy
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from flowyard.resources import admit
from flowyard.training import register_kinds
from flowyard.training.gang import SyncResult

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
PY = sys.executable


def reference(relative: str) -> dict[str, Any]:
    """An upstream example manifest (skips the test where the reference data is absent)."""
    import pytest

    path = REFERENCE / relative
    if not path.exists():
        pytest.skip(f"upstream reference data not present ({relative})")
    return yaml.safe_load(path.read_text())


def stored(obj: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    """Admit ``obj`` and give it what the store would (namespace, uid, creationTimestamp)."""
    register_kinds()
    obj = copy.deepcopy(obj)
    admit(obj)
    md = obj["metadata"]
    md.setdefault("namespace", namespace)
    md["uid"] = str(uuid.uuid4())
    md["creationTimestamp"] = "2026-01-01T00:00:00Z"
    return obj


def container(name: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "local", "command": [PY, "-c", code], **extra}


def replica(
    name: str, code: str, replicas: int = 1, policy: str | None = None, **extra: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "template": {"spec": {"containers": [container(name, code, **extra)]}},
    }
    if policy:
        spec["restartPolicy"] = policy
    return spec


def drive(
    sync: Callable[[dict[str, Any]], SyncResult],
    job: dict[str, Any],
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 60.0,
) -> list[SyncResult]:
    """Call ``sync`` like a controller would (persisting status) until ``done(status)``."""
    results = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = sync(job)
        job["status"] = result.status
        results.append(result)
        if done(result.status):
            return results
        time.sleep(0.1)
    raise AssertionError(f"job did not finish in {timeout}s; status: {job.get('status')}")


def cond(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == ctype), None)


def is_true(status: dict[str, Any], ctype: str) -> bool:
    c = cond(status, ctype)
    return bool(c and c["status"] == "True")


def finished(status: dict[str, Any]) -> bool:
    return is_true(status, "Succeeded") or is_true(status, "Failed")


def build_wheel(directory: Path, name: str = "flowyard_trainpkg", version: str = "1.0") -> Path:
    """A pure-Python wheel (``<name>.VALUE == "train-ok"``) built here, so no index is needed."""
    import base64
    import hashlib
    import zipfile

    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "VALUE = 'train-ok'\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel
