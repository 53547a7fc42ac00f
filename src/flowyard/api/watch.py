"""``?watch=true``: streaming ADDED/MODIFIED/DELETED events as JSON lines.

One :class:`WatchHub` thread follows the store's event log for the whole server and keeps the
newest events in memory; every watcher is a coroutine that reads from that buffer (or from the
store when it is behind the buffer) and sleeps on an asyncio event between changes. So a hundred
watchers cost a hundred coroutines, not a hundred threads or a hundred database polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from flowyard.errors import BadRequestError, GoneError
from flowyard.resources.meta import Resource
from flowyard.resources.registry import KindInfo
from flowyard.resources.selectors import parse_field_selector, parse_label_selector
from flowyard.store.base import BaseStore, WatchEvent

DEFAULT_TIMEOUT_SECONDS = 1800
_BUFFER = 20_000


class WatchHub:
    def __init__(self, store: BaseStore) -> None:
        self.store = store
        self.latest = store.latest_resource_version()
        self._buffer: deque[WatchEvent] = deque(maxlen=_BUFFER)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._changed = asyncio.Event()
        self._thread = threading.Thread(target=self._follow, name="watch-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(3)

    def _follow(self) -> None:
        last = self.latest
        while not self._stop.is_set():
            try:
                events = self.store.events_since(last)
            except GoneError:
                last = self.store.latest_resource_version()
                continue
            except Exception:
                self._stop.wait(1.0)
                continue
            if events:
                with self._lock:
                    self._buffer.extend(events)
                last = self.latest = events[-1].resource_version
                if self._loop is not None:
                    with contextlib.suppress(RuntimeError):  # loop closed at shutdown
                        self._loop.call_soon_threadsafe(self._wake)
            else:
                self.store.wait_for_change(last, 1.0)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def buffered_after(self, rv: int) -> list[WatchEvent] | None:
        """Buffered events after ``rv``, or None when the buffer no longer reaches back to it."""
        with self._lock:
            if not self._buffer or self._buffer[0].resource_version > rv + 1:
                return None if rv < self.latest else []
            return [e for e in self._buffer if e.resource_version > rv]

    async def wait(self, after: int, timeout: float) -> None:
        if self.latest > after:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


def _parse_rv(raw: str | None) -> int | None:
    if raw in (None, "", "0"):
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise BadRequestError(
            f'resourceVersion "{raw}" must be a number from a previous list or watch'
        ) from None


def _matcher(
    request: Request, info: KindInfo, namespace: str | None
) -> Callable[[WatchEvent], bool]:
    labels = parse_label_selector(request.query_params.get("labelSelector") or "")
    fields = parse_field_selector(request.query_params.get("fieldSelector") or "")

    def matches(event: WatchEvent) -> bool:
        obj = event.object
        md = obj.get("metadata") or {}
        return (
            event.kind_key == info.key
            and (not namespace or md.get("namespace") == namespace)
            and labels.matches(md.get("labels") or {})
            and fields.matches(obj)
        )

    return matches


def _line(type_: str, obj: Resource) -> bytes:
    return orjson.dumps({"type": type_, "object": obj}) + b"\n"


async def stream(
    request: Request, store: BaseStore, info: KindInfo, namespace: str | None
) -> Response:
    hub: WatchHub = request.app.state.watch_hub
    matches = _matcher(request, info, namespace)
    rv = _parse_rv(request.query_params.get("resourceVersion"))
    timeout = float(request.query_params.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS)
    initial: list[Resource] = []
    if rv is None:
        page = await run_in_threadpool(
            store.list,
            info,
            namespace,
            label_selector=request.query_params.get("labelSelector"),
            field_selector=request.query_params.get("fieldSelector"),
        )
        initial, rv = page.items, int(page.resource_version)
    else:
        await run_in_threadpool(store.events_since, rv, limit=1)  # GoneError -> 410 up front
    return StreamingResponse(
        _events(request, store, hub, matches, initial, rv, timeout), media_type="application/json"
    )


async def _events(
    request: Request,
    store: BaseStore,
    hub: WatchHub,
    matches: Callable[[WatchEvent], bool],
    initial: list[Resource],
    rv: int,
    timeout: float,
) -> AsyncIterator[bytes]:
    for obj in initial:
        yield _line("ADDED", obj)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = rv
    while loop.time() < deadline:
        buffered = hub.buffered_after(last)
        try:
            events = (
                buffered
                if buffered is not None
                else await run_in_threadpool(store.events_since, last)
            )
        except GoneError as exc:
            yield _line("ERROR", exc.to_status())
            return
        for event in events:
            last = event.resource_version
            if matches(event):
                yield _line(event.type, event.object)
        if not events:
            if await request.is_disconnected():
                return
            await hub.wait(last, min(5.0, max(deadline - loop.time(), 0.01)))
