"""Replica pools of one revision: least-outstanding-requests choice, the containerConcurrency
limit with queueing, holding requests while a revision scales from zero, and the request
statistics the autoscaler reads. Everything here runs on the router's event loop, except the
stats readers (plain attribute reads from the controller thread)."""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass, field


@dataclass
class Endpoint:
    """A ready replica, ``http://HOST:PORT``."""

    url: str
    inflight: int = 0
    host: str = ""
    port: int = 0

    def __post_init__(self) -> None:
        hostport = self.url.split("://", 1)[-1].split("/", 1)[0]
        host, _, port = hostport.rpartition(":")
        self.host, self.port = host or "127.0.0.1", int(port or 80)


@dataclass
class Stats:
    """Request counters of one revision: in-flight, waiting, time-weighted concurrency, rate."""

    inflight: int = 0
    waiting: int = 0
    last_request: float = field(default_factory=time.monotonic)
    _area: float = 0.0
    _mark: float = field(default_factory=time.monotonic)
    _window_start: float = field(default_factory=time.monotonic)
    _count: int = 0

    def _advance(self) -> None:
        now = time.monotonic()
        self._area += (self.inflight + self.waiting) * (now - self._mark)
        self._mark = now

    def begin(self) -> None:
        self._advance()
        self.inflight += 1
        self._count += 1
        self.last_request = time.monotonic()

    def end(self) -> None:
        self._advance()
        self.inflight -= 1
        self.last_request = time.monotonic()

    def take_window(self) -> tuple[float, float]:
        """(average concurrency, requests per second) since the last call."""
        self._advance()
        span = max(time.monotonic() - self._window_start, 1e-3)
        result = (self._area / span, self._count / span)
        self._area, self._count, self._window_start = 0.0, 0, time.monotonic()
        return result

    def idle_for(self) -> float:
        if self.inflight or self.waiting:
            return 0.0
        return time.monotonic() - self.last_request


class Pool:
    """The ready replicas of one revision."""

    def __init__(self, concurrency: int = 0) -> None:
        self.endpoints: list[Endpoint] = []
        self.concurrency = concurrency
        self.stats = Stats()
        self._changed = asyncio.Condition()

    async def set_endpoints(self, urls: list[str], concurrency: int) -> None:
        known = {e.url: e for e in self.endpoints}
        self.endpoints = [known.get(u) or Endpoint(u) for u in urls]
        self.concurrency = concurrency
        async with self._changed:
            self._changed.notify_all()

    def _free(self) -> list[Endpoint]:
        if not self.concurrency:
            return self.endpoints
        return [e for e in self.endpoints if e.inflight < self.concurrency]

    def _pick(self) -> Endpoint | None:
        free = self._free()
        if not free:
            return None
        low = min(e.inflight for e in free)
        return random.choice([e for e in free if e.inflight == low])

    async def acquire(self, timeout: float, on_cold: object = None) -> Endpoint | None:
        """A replica with room, waiting (in arrival order) up to ``timeout`` seconds; calls
        ``on_cold()`` when there is no replica at all (scale from zero)."""
        self.stats.begin()
        endpoint = self._pick()
        if endpoint is None:
            endpoint = await self._wait(timeout, on_cold)
        if endpoint is None:
            self.stats.end()
            return None
        endpoint.inflight += 1
        return endpoint

    async def _wait(self, timeout: float, on_cold: object) -> Endpoint | None:
        self.stats.waiting += 1
        self.stats.inflight -= 1
        deadline = time.monotonic() + timeout
        try:
            async with self._changed:
                while True:
                    if not self.endpoints and callable(on_cold):
                        on_cold()
                    endpoint = self._pick()
                    if endpoint is not None:
                        return endpoint
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    try:
                        await asyncio.wait_for(self._changed.wait(), min(left, 1.0))
                    except TimeoutError:
                        continue
        finally:
            self.stats.waiting -= 1
            self.stats.inflight += 1

    async def release(self, endpoint: Endpoint) -> None:
        endpoint.inflight -= 1
        self.stats.end()
        if self.concurrency:
            async with self._changed:
                self._changed.notify(1)


def desired_replicas(
    stats: Stats,
    current: int,
    min_replicas: int,
    max_replicas: int,
    target: float,
    metric: str,
    idle_seconds: float,
) -> int:
    """Request-based autoscaling: ``ceil(observed / target)`` clamped to [min, max]; at
    ``minReplicas: 0`` the revision goes to zero after ``idle_seconds`` without requests and to
    one as soon as a request waits."""
    concurrency, rps = stats.take_window()
    observed = rps if metric == "rps" else max(concurrency, float(stats.inflight))
    want = math.ceil(observed / target) if target > 0 else 1
    if min_replicas == 0:
        if stats.waiting or stats.inflight:
            want = max(want, 1)
        elif stats.idle_for() < idle_seconds:
            want = max(want, min(current, 1))
    high = max_replicas if max_replicas > 0 else 1_000
    return max(min_replicas, min(want, high))
