"""HTTP/1.1 on raw asyncio for the router's data path: a server protocol and a pooled client.

Why not an ASGI server plus an HTTP client library: the router only moves bytes between a
caller and a replica, and the generic stacks cost several times the model server's own work
per request (ASGI scope/messages, header objects, a task and a timeout scope per call). Here a
request is parsed once by ``httptools`` (llhttp), handed to a handler as a small
:class:`Request`, and the upstream answer is parsed the same way and written back.

Contract:

* :class:`ServerProtocol` serves one client connection: keep-alive, pipelined requests answered
  in order, ``Expect: 100-continue`` honoured, bodies above ``max_body`` answered 413 (the rest
  of the body is read and dropped, then the connection is closed), malformed requests answered
  400, idle connections closed after ``idle_timeout`` seconds. Handler exceptions become 500.
* :class:`UpstreamPool` sends a :class:`Request` to ``host:port`` over a kept-alive connection
  (opened when none is idle) and returns the whole :class:`Response`; a request that finds a
  reused connection closed before any answer byte is retried once on a new one (the replica
  closed an idle connection; nothing reached the model). ``timeout`` bounds the exchange.
* Headers cross as they are except hop-by-hop ones (``connection``, ``keep-alive``,
  ``transfer-encoding``, ``upgrade``, ``te``, ``trailer``, ``proxy-connection``), ``host`` and
  ``content-length`` (set from the body) and ``expect``. Bodies are buffered, not streamed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast

import httptools
import orjson

HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"upgrade",
        b"te",
        b"trailer",
        b"proxy-connection",
        b"host",
        b"content-length",
        b"expect",
    }
)
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_MAX_IDLE_PER_ENDPOINT = 256
_MAX_PIPELINE = 64


@dataclass(slots=True)
class Request:
    method: bytes
    target: bytes  # path and query as the caller sent them
    headers: list[tuple[bytes, bytes]]  # lower-case names, hop-by-hop removed
    host: bytes
    body: bytes
    keep_alive: bool = True


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]  # hop-by-hop removed
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


Handler = Callable[[Request], Awaitable[Response]]


def json_response(status: int, payload: object) -> Response:
    return Response(status, [(b"content-type", b"application/json")], orjson.dumps(payload))


def _encode_response(resp: Response, keep_alive: bool, head: bool) -> bytes:
    reason = _REASONS.get(resp.status, b"Unknown")
    lines = [b"HTTP/1.1 %d %s\r\n" % (resp.status, reason)]
    lines += [k + b": " + v + b"\r\n" for k, v in resp.headers]
    lines.append(b"content-length: %d\r\n" % len(resp.body))
    if not keep_alive:
        lines.append(b"connection: close\r\n")
    lines.append(b"\r\n")
    if not head:
        lines.append(resp.body)
    return b"".join(lines)


class ServerProtocol(asyncio.Protocol):
    """One client connection of a router port."""

    def __init__(self, handler: Handler, max_body: int, idle_timeout: float = 75.0) -> None:
        self.handler = handler
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_event_loop()
        self.queue: deque[Request] = deque()
        self.busy = False
        self.paused = False
        self._idle: asyncio.TimerHandle | None = None
        self._last = 0.0
        self._reset()

    def _reset(self) -> None:
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._host = b""
        self._body: list[bytes] = []
        self._size = 0
        self._too_large = False
        self._expect = False

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(501, "protocol upgrades are not supported by the router")
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed HTTP request: {exc}")

    # -- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"host":
            self._host = value
        if name not in HOP:
            self._headers.append((name, value))
        elif name == b"content-length" and value.isdigit() and int(value) > self.max_body:
            self._too_large = True
        elif name == b"expect" and value.lower() == b"100-continue":
            self._expect = True

    def on_headers_complete(self) -> None:
        if self.transport is None or not self._expect:
            return
        if self._too_large:  # refuse before the caller sends the body
            self._fail(413, f"request body over the router's limit of {self.max_body} bytes")
        else:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.max_body:
            self._too_large = True
            self._body.clear()
        elif not self._too_large:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._too_large:
            message = f"request body over the router's limit of {self.max_body} bytes"
            self._fail(413, message)
            return
        method = self.parser.get_method()
        request = Request(
            method,
            self._url,
            self._headers,
            self._host,
            b"".join(self._body),
            self.parser.should_keep_alive(),
        )
        self.queue.append(request)
        if len(self.queue) > _MAX_PIPELINE and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True
        if not self.busy:
            self.busy = True
            self.loop.create_task(self._serve())

    # -- serving -------------------------------------------------------------------------------
    async def _serve(self) -> None:
        try:
            while self.queue:
                request = self.queue.popleft()
                try:
                    response = await self.handler(request)
                except Exception as exc:  # a router bug must not kill the connection silently
                    response = json_response(500, {"error": f"router error: {exc!r}"})
                transport = self.transport
                if transport is None or transport.is_closing():
                    return
                transport.write(
                    _encode_response(response, request.keep_alive, request.method == b"HEAD")
                )
                if not request.keep_alive:
                    transport.close()
                    return
                if self.paused and len(self.queue) <= _MAX_PIPELINE // 2:
                    self.paused = False
                    transport.resume_reading()
        finally:
            self.busy = False
            self._arm_idle()

    def _arm_idle(self) -> None:
        # One timer per idle period, not one per request: it re-arms itself while requests come.
        self._last = self.loop.time()
        if self._idle is None:
            self._idle = self.loop.call_later(self.idle_timeout, self._close_if_idle)

    def _close_if_idle(self) -> None:
        self._idle = None
        left = self._last + self.idle_timeout - self.loop.time()
        if self.busy or self.queue or left > 0:
            self._idle = self.loop.call_later(max(left, 1.0), self._close_if_idle)
        elif self.transport is not None:
            self.transport.close()

    def _fail(self, status: int, message: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.queue.clear()
        body = json_response(status, {"error": message})
        self.transport.write(_encode_response(body, False, False))
        self.transport.close()


class _Upstream(asyncio.Protocol):
    """One kept-alive connection to a replica; one exchange at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.started = False
        self.reusable = True
        self.head = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._settle(ConnectionResetError("the replica closed the connection"))

    def data_received(self, data: bytes) -> None:
        self.started = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._settle(ConnectionError(f"malformed answer from the replica: {exc}"))
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name not in HOP:
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.head:  # no body follows a HEAD answer; the parser cannot know, so drop the conn
            self.reusable = False
            self._finish()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self.reusable and self.parser.should_keep_alive()
        self._finish()

    def _finish(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            status = self.parser.get_status_code()
            waiter.set_result(Response(status, self._headers, b"".join(self._body)))

    def _settle(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def send(self, data: bytes, head: bool) -> asyncio.Future[Response]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.started = False
        self.head = head
        self._headers = []
        self._body = []
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


class UpstreamPool:
    """Kept-alive connections to replicas, keyed by ``(host, port)``."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Upstream]] = {}

    async def request(self, host: str, port: int, request: Request, timeout: float) -> Response:
        """Send ``request``; raises ``ConnectionError``/``OSError`` or ``TimeoutError``."""
        data = _encode_request(request, b"%s:%d" % (host.encode(), port))
        head = request.method == b"HEAD"
        for attempt in range(2):
            conn, reused = await self._take(host, port)
            try:
                response = await self._exchange(conn, data, head, timeout)
            except ConnectionResetError:
                conn.close()
                if reused and not conn.started and attempt == 0:
                    continue  # a stale kept-alive connection: nothing reached the replica
                raise
            except BaseException:
                conn.close()
                raise
            self._give_back(host, port, conn)
            return response
        raise ConnectionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _exchange(self, conn: _Upstream, data: bytes, head: bool, timeout: float) -> Response:
        waiter = conn.send(data, head)
        timer = asyncio.get_running_loop().call_later(
            timeout, _expire, waiter, f"no answer from the replica within {timeout:g}s"
        )
        try:
            return await waiter
        finally:
            timer.cancel()

    async def _take(self, host: str, port: int) -> tuple[_Upstream, bool]:
        idle = self._idle.get((host, port))
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn, True
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(_Upstream, host, port)
        return proto, False

    def _give_back(self, host: str, port: int, conn: _Upstream) -> None:
        idle = self._idle.setdefault((host, port), [])
        if conn.reusable and not conn.closed and len(idle) < _MAX_IDLE_PER_ENDPOINT:
            idle.append(conn)
        else:
            conn.close()

    def forget(self, keep: set[tuple[str, int]]) -> None:
        """Close idle connections to endpoints not in ``keep`` (replicas that went away)."""
        for key in [k for k in self._idle if k not in keep]:
            for conn in self._idle.pop(key):
                conn.close()

    def close(self) -> None:
        self.forget(set())


def _expire(waiter: asyncio.Future[Response], message: str) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError(message))


def _encode_request(request: Request, host: bytes) -> bytes:
    lines = [b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (request.method, request.target, host)]
    lines += [k + b": " + v + b"\r\n" for k, v in request.headers]
    lines.append(b"content-length: %d\r\n\r\n" % len(request.body))
    lines.append(request.body)
    return b"".join(lines)
