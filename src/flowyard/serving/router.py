"""The data path of InferenceServices: one router per InferenceService inside the control plane.

Each InferenceService gets two loopback ports, served by one event loop on a router thread:

* ``status.url`` (the entry): ``:explain`` goes to the explainer when there is one, everything
  else to the transformer when there is one, else to the predictor;
* ``status.components.predictor.url``: the predictor only (what a transformer calls).

A request picks a revision by the traffic split (or by tag: a ``Host`` header starting with
``latest-`` or ``prev-``), then the ready replica of that revision with the fewest requests in
flight, waiting in arrival order while every replica is at ``containerConcurrency``. A revision
with no replica (scaled to zero) wakes the controller and the request is held until a replica is
ready (up to the component ``timeout``). Bodies are forwarded as they are, over keep-alive
connections (raw HTTP/1.1, see :mod:`flowyard.serving.proxy`); nothing is logged per request.
The controller pushes routes with :meth:`apply`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from flowyard.serving.cloudevents import EventLogger
from flowyard.serving.graph import Graph, GraphRunner
from flowyard.serving.pools import Pool, desired_replicas
from flowyard.serving.proxy import Request, Response, ServerProtocol, UpstreamPool, json_response

log = logging.getLogger(__name__)
# Bodies above this are refused by the router itself (the model server's own limit is lower).
MAX_BODY = 256 * 1024 * 1024


@dataclass
class ComponentRoute:
    """Traffic of one component: ``split`` = [(revision, percent)], ``tags`` tag -> revision,
    ``endpoints`` revision -> ready replica URLs."""

    split: list[tuple[str, int]]
    tags: dict[str, str]
    endpoints: dict[str, list[str]]
    concurrency: int = 0
    timeout: float = 300.0
    logger: dict[str, Any] | None = None
    grpc: dict[str, list[str]] = field(default_factory=dict)  # revision -> replica gRPC host:port


@dataclass
class Routes:
    namespace: str
    name: str
    components: dict[str, ComponentRoute] = field(default_factory=dict)

    @property
    def entry(self) -> str:
        return "transformer" if "transformer" in self.components else "predictor"


def free_port(wanted: int = 0) -> int:
    """``wanted`` if it can be bound on 127.0.0.1, else a free port."""
    for port in (wanted, 0) if wanted else (0,):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


class IsvcRouter:
    """The two servers and the replica pools of one InferenceService."""

    def __init__(self, hub: RouterHub, key: tuple[str, str]) -> None:
        self.hub = hub
        self.key = key
        self.routes = Routes(*key)
        self.pools: dict[tuple[str, str], Pool] = {}
        self.servers: list[asyncio.AbstractServer] = []
        self.ports: tuple[int, int] = (0, 0)
        self.events = EventLogger(hub.client, key[0], key[1])

    async def start(self, entry_port: int, predictor_port: int) -> None:
        ports = []
        for wanted, fixed in ((entry_port, None), (predictor_port, "predictor")):
            server = await _listen(self._handler(fixed), wanted)
            self.servers.append(server)
            ports.append(int(server.sockets[0].getsockname()[1]))  # type: ignore[attr-defined]
        self.ports = (ports[0], ports[1])

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        self.events.close()

    async def apply(self, routes: Routes) -> None:
        self.routes = routes
        for comp, route in routes.components.items():
            for rev in {name for name, _ in route.split} | set(route.tags.values()):
                pool = self.pools.setdefault((comp, rev), Pool(route.concurrency))
                await pool.set_endpoints(route.endpoints.get(rev, []), route.concurrency)
            for rev, urls in route.endpoints.items():
                pool = self.pools.setdefault((comp, rev), Pool(route.concurrency))
                await pool.set_endpoints(urls, route.concurrency)

    def _handler(self, fixed: str | None) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            return await self._handle(request, fixed)

        return handle

    def _component(self, path: bytes, fixed: str | None) -> str:
        if path.endswith(b":explain") and "explainer" in self.routes.components:
            return "explainer"
        return fixed or self.routes.entry

    def _revision(self, route: ComponentRoute, host: str) -> str | None:
        for tag in ("latest", "prev"):
            if host.startswith(f"{tag}-") and tag in route.tags:
                return route.tags[tag]
        weights = [(rev, pct) for rev, pct in route.split if pct > 0]
        if not weights:
            return None
        if len(weights) == 1:
            return weights[0][0]
        point = random.uniform(0, sum(p for _, p in weights))
        for rev, pct in weights:
            point -= pct
            if point <= 0:
                return rev
        return weights[-1][0]

    async def _handle(self, request: Request, fixed: str | None) -> Response:
        component = self._component(request.target.split(b"?", 1)[0], fixed)
        route = self.routes.components.get(component)
        rev = self._revision(route, request.host.decode("latin-1")) if route else None
        if route is None or rev is None:
            return json_response(503, {"error": f"{self.key[1]}: no ready revision of {component}"})
        pool = self.pools.get((component, rev))
        if pool is None:
            pool = self.pools.setdefault((component, rev), Pool(route.concurrency))
        endpoint = await pool.acquire(route.timeout, lambda: self.hub.wake(self.key))
        if endpoint is None:
            return json_response(
                503, {"error": f"no ready replica of {rev} within {route.timeout:g}s"}
            )
        try:
            response = await self.hub.upstream.request(
                endpoint.host, endpoint.port, request, route.timeout
            )
        except (OSError, TimeoutError) as exc:
            status = 504 if isinstance(exc, TimeoutError) else 502
            return json_response(status, {"error": f"replica of {rev} failed: {exc}"})
        finally:
            await pool.release(endpoint)
        if route.logger:
            self.events.log(route.logger, component, rev, request, response)
        return response


async def _listen(
    handler: Callable[[Request], Awaitable[Response]], wanted: int
) -> asyncio.AbstractServer:
    """A router port on 127.0.0.1: ``wanted`` when free (kept across restarts), else any."""
    loop = asyncio.get_running_loop()
    for port in (wanted, 0) if wanted else (0,):
        try:
            return await loop.create_server(
                lambda: ServerProtocol(handler, MAX_BODY), "127.0.0.1", port, backlog=1024
            )
        except OSError:
            continue
    raise OSError("no free port on 127.0.0.1 for the router")


class RouterHub:
    """All routers of this control plane, on one event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = _new_loop()
        self.routers: dict[tuple[str, str], IsvcRouter] = {}
        self.graphs: dict[tuple[str, str], tuple[GraphRunner, asyncio.AbstractServer]] = {}
        self.kick: Callable[[tuple[str, str]], None] | None = None
        self._last_wake: dict[tuple[str, str], float] = {}
        self._thread = threading.Thread(target=self._run, name="serving-router", daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
        self.client = httpx.AsyncClient(limits=limits, timeout=300.0, trust_env=False)
        self.upstream = UpstreamPool()
        self._ready.set()
        self.loop.run_forever()

    def _call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wake(self, key: tuple[str, str]) -> None:
        """A request waits for a replica: have the controller reconcile now (rate-limited)."""
        now = time.monotonic()
        if now - self._last_wake.get(key, 0.0) < 0.5 or self.kick is None:
            return
        self._last_wake[key] = now
        self.loop.run_in_executor(None, self.kick, key)

    # -- called from controller threads ----------------------------------------------------
    def ensure(self, key: tuple[str, str], entry_port: int, predictor_port: int) -> tuple[int, int]:
        """Start the router of ``key`` (on the given ports when free); return its ports."""

        async def go() -> tuple[int, int]:
            router = self.routers.get(key)
            if router is None:
                router = IsvcRouter(self, key)
                self.routers[key] = router
                await router.start(entry_port, predictor_port)
            return router.ports

        result: tuple[int, int] = self._call(go())
        return result

    def apply(self, key: tuple[str, str], routes: Routes) -> None:
        router = self.routers.get(key)
        if router is not None:
            self._call(router.apply(routes))

    def remove(self, key: tuple[str, str]) -> None:
        router = self.routers.pop(key, None)
        if router is not None:
            self._call(router.stop())

    def desired(self, key: tuple[str, str], component: str, revision: str, **kw: Any) -> int:
        """The autoscaler's replica count for one revision (see :func:`desired_replicas`)."""

        async def go() -> int:
            router = self.routers.get(key)
            pool = router.pools.get((component, revision)) if router else None
            if pool is None:
                return max(int(kw["min_replicas"]), min(int(kw["current"]), 1))
            return desired_replicas(pool.stats, **kw)

        result: int = self._call(go())
        return result

    def ensure_graph(self, key: tuple[str, str], port: int) -> int:
        """Start the router of InferenceGraph ``key`` (on ``port`` when free); return its port."""

        async def go() -> int:
            entry = self.graphs.get(key)
            if entry is None:
                runner = GraphRunner(key[1], Graph({}), self.upstream)
                entry = (runner, await _listen(runner.handle, port))
                self.graphs[key] = entry
            return int(entry[1].sockets[0].getsockname()[1])  # type: ignore[attr-defined]

        result: int = self._call(go())
        return result

    def apply_graph(self, key: tuple[str, str], graph: Graph) -> None:
        async def go() -> None:
            entry = self.graphs.get(key)
            if entry is not None:
                entry[0].graph = graph

        self._call(go())

    def remove_graph(self, key: tuple[str, str]) -> None:
        async def go() -> None:
            entry = self.graphs.pop(key, None)
            if entry is not None:
                entry[1].close()

        self._call(go())

    def shutdown(self) -> None:
        for key in list(self.routers):
            with contextlib.suppress(Exception):
                self.remove(key)
        for key in list(self.graphs):
            with contextlib.suppress(Exception):
                self.remove_graph(key)


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when available (it ships with uvicorn[standard]): the data path's syscalls and
    callbacks cost about half of the stock loop's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a core dependency on Linux/macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


_HUB: RouterHub | None = None
_HUB_LOCK = threading.Lock()


def get_hub() -> RouterHub:
    global _HUB
    with _HUB_LOCK:
        if _HUB is None:
            _HUB = RouterHub()
        return _HUB
