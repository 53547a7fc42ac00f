"""Request batching: merge concurrent requests into one model call, split the answers back.

Contract: ``submit(key, item, rows)`` queues ``item`` under ``key`` (requests with different
keys, e.g. different tensor shapes, are never merged) and resolves to that item's own result.
A queue is flushed when its rows reach ``max_size`` or ``max_latency_s`` after its first item
arrived, whichever comes first; an item that would overflow a non-empty queue flushes it
first. ``run(items)`` receives the flushed items in arrival order and returns one result per
item; if it raises, every item of that batch gets the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

RunBatch = Callable[[list[Any]], Awaitable[list[Any]]]


@dataclass
class _Queue:
    items: list[Any] = field(default_factory=list)
    futures: list[asyncio.Future[Any]] = field(default_factory=list)
    rows: int = 0
    timer: asyncio.TimerHandle | None = None


class Batcher:
    def __init__(
        self,
        max_size: int,
        max_latency_s: float,
        run: RunBatch,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_size < 1:
            raise ValueError("batch max size must be at least 1")
        self.max_size = max_size
        self.max_latency_s = max(0.0, max_latency_s)
        self._run = run
        self._on_batch = on_batch
        self._queues: dict[Hashable, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, key: Hashable, item: Any, rows: int) -> Any:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(key)
        if queue is not None and queue.items and queue.rows + rows > self.max_size:
            self._flush(key)
            queue = None
        if queue is None:
            queue = self._queues[key] = _Queue()
        future: asyncio.Future[Any] = loop.create_future()
        queue.items.append(item)
        queue.futures.append(future)
        queue.rows += rows
        if queue.rows >= self.max_size:
            self._flush(key)
        elif queue.timer is None:
            queue.timer = loop.call_later(self.max_latency_s, self._flush, key)
        return await future

    def _flush(self, key: Hashable) -> None:
        queue = self._queues.pop(key, None)
        if queue is None:
            return
        if queue.timer is not None:
            queue.timer.cancel()
        if self._on_batch is not None:
            self._on_batch(queue.rows)
        task = asyncio.get_running_loop().create_task(self._execute(queue))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, queue: _Queue) -> None:
        try:
            results = await self._run(queue.items)
            if len(results) != len(queue.items):
                raise RuntimeError(
                    f"batch of {len(queue.items)} requests produced {len(results)} results"
                )
        except BaseException as exc:  # every waiter must hear about the failure
            for future in queue.futures:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for future, result in zip(queue.futures, results, strict=True):
            if not future.done():
                future.set_result(result)
