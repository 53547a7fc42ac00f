"""Shared inputs: Katib's example experiments (copied unchanged from Katib's
examples/v1beta1 into data/katib_examples; Apache-2.0)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowyard.resources.registry import KindRegistry
from flowyard.tuning.kinds import register_kinds

EXAMPLES_DIR = Path(__file__).resolve().parent / "data" / "katib_examples"
EXAMPLE_FILES = sorted(EXAMPLES_DIR.glob("*.yaml"))


def load_example(path: Path) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert len(docs) == 1, f"{path.name}: expected one document"
    return docs[0]


@pytest.fixture(scope="session")
def examples() -> dict[str, dict[str, Any]]:
    if not EXAMPLE_FILES:
        pytest.fail(f"no Katib examples found in {EXAMPLES_DIR}")
    return {p.stem: load_example(p) for p in EXAMPLE_FILES}


@pytest.fixture
def registry() -> KindRegistry:
    reg = KindRegistry()
    register_kinds(reg)
    return reg


@pytest.fixture
def random_example(examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return copy.deepcopy(examples["random"])
