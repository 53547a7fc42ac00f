"""A real flowyard server per test module and a real ``kfp.Client`` pointed at it."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with tempfile.TemporaryDirectory(prefix="flowyard-kfp-") as tmp:
        running = RunningServer(Path(tmp) / "home").start()
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def kfp_client(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> object:
    import kfp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # kfp's "only works with KFP v2" notice
        return kfp.Client(host=server.url, existing_token=server.token)


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30
    ) as client:
        yield client
