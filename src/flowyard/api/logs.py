"""The ``/log`` subresource: the stdout/stderr of the processes an object started.

Controllers write logs to ``FLOWYARD_HOME/logs/<namespace>/<plural>/<name>/<process>.log``. A
request returns the newest file, or the one named by ``container=<process>``; ``tailLines``
keeps the last lines and ``follow=true`` streams until no process of the object is running.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from flowyard import config
from flowyard.controllers.base import LABEL_KIND, LABEL_NAME, LABEL_NAMESPACE
from flowyard.errors import BadRequestError, NotFoundError
from flowyard.resources.meta import is_safe_path_segment
from flowyard.resources.registry import KindInfo

if TYPE_CHECKING:
    from flowyard.api.service import ResourceService
    from flowyard.executors.base import BaseExecutor

_CHUNK = 64 * 1024


def log_dir(info: KindInfo, namespace: str, name: str) -> Path:
    return config.logs_dir() / (namespace or "_cluster") / info.plural / name


def _pick(directory: Path, container: str | None, info: KindInfo, name: str) -> Path:
    if container:
        if not is_safe_path_segment(container):
            raise BadRequestError(f'container "{container}" is not a valid process name')
        path = directory / f"{container}.log"
        if not path.exists():
            available = sorted(p.stem for p in directory.glob("*.log"))
            raise NotFoundError(
                f'no log "{container}" for {info.plural}/{name}; available: '
                f"{', '.join(available) or 'none'}"
            )
        return path
    files = sorted(directory.glob("*.log"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise NotFoundError(f"no logs yet for {info.plural}/{name}: it has not started a process")
    return files[-1]


def _tail(path: Path, lines: int | None) -> tuple[bytes, int]:
    """The log so far (its last ``lines`` lines) and the offset it ends at, read in one pass so
    that ``follow`` continues exactly where this left off."""
    data = path.read_bytes()
    end = len(data)
    if lines is not None:
        data = b"".join(deque(data.splitlines(keepends=True), maxlen=lines))
    return data, end


async def respond(
    request: Request, service: ResourceService, info: KindInfo, namespace: str, name: str
) -> Response:
    raw_tail = request.query_params.get("tailLines")
    if raw_tail not in (None, "") and not str(raw_tail).isdigit():
        raise BadRequestError(f'tailLines="{raw_tail}" must be a non-negative integer')
    tail = int(raw_tail) if raw_tail else None
    path = _pick(log_dir(info, namespace, name), request.query_params.get("container"), info, name)
    head, end = await run_in_threadpool(_tail, path, tail)
    if request.query_params.get("follow") not in ("true", "1"):
        return PlainTextResponse(head)
    executor: BaseExecutor = request.app.state.executor
    labels = {LABEL_KIND: info.key, LABEL_NAMESPACE: namespace, LABEL_NAME: name}
    return StreamingResponse(
        _follow(request, path, head, end, executor, labels), media_type="text/plain"
    )


async def _follow(
    request: Request,
    path: Path,
    head: bytes,
    offset: int,
    executor: BaseExecutor,
    labels: dict[str, str],
) -> AsyncIterator[bytes]:
    yield head
    while True:
        with path.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read(_CHUNK)
        if chunk:
            offset += len(chunk)
            yield chunk
            continue
        running = any(not p.state.finished for p in executor.list(labels))
        if not running or await request.is_disconnected():
            return
        await asyncio.sleep(0.25)
