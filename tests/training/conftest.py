"""Fixtures for the training tests: a real Open MPI ``mpirun`` (installed by a script)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_openmpi.sh"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: Open MPI's mpirun is required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mpirun() -> str:
    """The path of ``mpirun``, installed with scripts/install_openmpi.sh when missing.

    Skips where it cannot be installed (no root, no apt), but fails when ``CI=true``.
    """
    found = shutil.which("mpirun")
    if found:
        return found
    try:
        proc = subprocess.run(
            ["sh", str(SCRIPT)], capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"scripts/install_openmpi.sh could not run: {exc}")
    else:
        if proc.returncode != 0:
            _unavailable(f"scripts/install_openmpi.sh failed: {proc.stderr.strip()[-500:]}")
    found = shutil.which("mpirun")
    if not found:
        _unavailable("mpirun is still not on PATH after scripts/install_openmpi.sh")
    assert found is not None
    return found
