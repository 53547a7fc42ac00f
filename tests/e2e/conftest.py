from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(
        tmp_path_factory.mktemp("server-home"), extra_env={"FLOWYARD_JOB_BACKOFF_SECONDS": "0.1"}
    ).start()
    yield running
    running.stop()
