"""Shared test setup: every test gets its own FLOWYARD_HOME and HOME, so nothing leaks between
tests or into the user's real home (some libraries write under ~/.cache or ~/.ray)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "flowyard-home"
    home.mkdir()
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    monkeypatch.setenv("FLOWYARD_HOME", str(home))
    monkeypatch.setenv("HOME", str(user_home))
    for var in ("FLOWYARD_URL", "FLOWYARD_TOKEN", "FLOWYARD_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    yield home
