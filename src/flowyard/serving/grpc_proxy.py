"""V2 gRPC through an InferenceService: one gRPC port per InferenceService, proxying each call
to a ready predictor replica's own gRPC port.

Contract: every unary method (``inference.GRPCInferenceService/*``) is forwarded as opaque
bytes with the caller's metadata and deadline (capped by the component ``timeout``). The
revision is drawn by the predictor's traffic split (tags are HTTP-only), then the replica with
the fewest calls in flight. No ready replica: ``UNAVAILABLE``; an upstream error status is
passed through with its details. The port is ``status.grpcAddress`` (``127.0.0.1:PORT``, kept
across updates and, when free, across restarts).

A synchronous ``grpc.server`` (thread pool) rather than ``grpc.aio`` on the router's loop: the
router loop is uvloop, which grpc's asyncio integration does not support.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

_WORKERS = 16


class GrpcProxy:
    """The gRPC port of one InferenceService."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.split: list[tuple[str, int]] = []
        self.endpoints: dict[str, list[str]] = {}
        self.timeout = 300.0
        self._lock = threading.Lock()
        self._inflight: Counter[str] = Counter()
        self._channels: dict[str, grpc.Channel] = {}
        self._server: Any = None
        self.port = 0

    def start(self, wanted: int) -> int:
        for port in (wanted, 0) if wanted else (0,):
            server = grpc.server(ThreadPoolExecutor(_WORKERS, thread_name_prefix="isvc-grpc"))
            server.add_generic_rpc_handlers((_Handler(self),))
            try:
                bound = server.add_insecure_port(f"127.0.0.1:{port}")
            except RuntimeError:
                bound = 0
            if bound:
                server.start()
                self._server, self.port = server, int(bound)
                return self.port
        raise OSError("no free port on 127.0.0.1 for the gRPC proxy")

    def update(
        self, split: list[tuple[str, int]], endpoints: dict[str, list[str]], timeout: float
    ) -> None:
        with self._lock:
            self.split, self.endpoints, self.timeout = split, endpoints, timeout
            live = {a for addrs in endpoints.values() for a in addrs}
            for addr in [a for a in self._channels if a not in live]:
                self._channels.pop(addr).close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=1.0)
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()

    def _pick(self) -> tuple[str, grpc.Channel] | None:
        with self._lock:
            weights = [(rev, pct) for rev, pct in self.split if pct > 0 and self.endpoints.get(rev)]
            if not weights:
                return None
            rev = random.choices([r for r, _ in weights], [p for _, p in weights])[0]
            addr = min(self.endpoints[rev], key=lambda a: self._inflight[a])
            self._inflight[addr] += 1
            channel = self._channels.get(addr)
            if channel is None:
                channel = self._channels[addr] = grpc.insecure_channel(addr)
            return addr, channel

    def forward(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        picked = self._pick()
        if picked is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.name}: no ready predictor replica")
        addr, channel = picked  # type: ignore[misc]
        remaining = context.time_remaining()
        timeout = min(self.timeout, remaining) if remaining is not None else self.timeout
        try:
            call = channel.unary_unary(method)
            answer: bytes = call(
                request, timeout=timeout, metadata=_metadata(context.invocation_metadata())
            )
            return answer
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")
            raise  # not reached: abort raises
        finally:
            with self._lock:
                self._inflight[addr] -= 1


def _metadata(items: Any) -> list[tuple[str, Any]]:
    # grpc-internal and HTTP/2 pseudo headers are set by the channel itself
    return [(k, v) for k, v in items or () if not k.startswith((":", "grpc-"))]


class _Handler(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, proxy: GrpcProxy) -> None:
        self.proxy = proxy

    def service(self, handler_call_details: Any) -> Any:
        method = handler_call_details.method

        def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
            return self.proxy.forward(method, request, context)

        return grpc.unary_unary_rpc_method_handler(unary)


class GrpcProxies:
    """The gRPC proxies of this control plane, by (namespace, name)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.proxies: dict[tuple[str, str], GrpcProxy] = {}

    def ensure(self, key: tuple[str, str], wanted: int) -> GrpcProxy:
        with self._lock:
            proxy = self.proxies.get(key)
            if proxy is None:
                proxy = GrpcProxy(key[1])
                proxy.start(wanted)
                self.proxies[key] = proxy
            return proxy

    def remove(self, key: tuple[str, str]) -> None:
        with self._lock:
            proxy = self.proxies.pop(key, None)
        if proxy is not None:
            proxy.stop()


_PROXIES = GrpcProxies()


def get_proxies() -> GrpcProxies:
    return _PROXIES
