"""scripts/sync_schemas.py regenerates the packaged schemas byte for byte."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import REFERENCE

ROOT = Path(__file__).resolve().parents[2]


def test_sync_schemas_reproduces_packaged_files(tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    if not (REFERENCE / "training-operator-v1").exists():
        pytest.skip("upstream reference data not present")
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "sync_schemas.py"),
            "--reference",
            str(REFERENCE),
            "--set",
            "training",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "PyTorchJob.json.gz" in out.stdout
    packaged = ROOT / "src" / "flowyard" / "resources" / "schemas"
    for produced in sorted(tmp_path.iterdir()):
        assert produced.read_bytes() == (packaged / produced.name).read_bytes(), produced.name
    assert len(list(tmp_path.iterdir())) == 4


def test_sync_schemas_rejects_bad_arguments(tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    crd = tmp_path / "crd.yaml"
    crd.write_text(
        "kind: CustomResourceDefinition\nspec:\n  group: g\n  names: {kind: K}\n"
        "  versions: [{name: v1, schema: {openAPIV3Schema: {type: object}}}]\n"
    )
    run = [sys.executable, str(ROOT / "scripts" / "sync_schemas.py"), "--out", str(tmp_path)]
    ok = subprocess.run([*run, "--crd", f"{crd}:v1"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and (tmp_path / "g.v1.K.json.gz").exists()
    bad = subprocess.run([*run, "--crd", f"{crd}:v2"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "no version 'v2'" in bad.stderr
