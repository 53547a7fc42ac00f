"""The inference logger: request/response CloudEvents (binary mode) to ``logger.url``.

Events are queued (bounded, 10 000; when full, new events are dropped and counted in
``dropped``) and posted by one background task, so the request path only enqueues. Headers as
KServe's logger sends them: ``ce-specversion: 1.0``, ``ce-id`` (the request's ``x-request-id``
or a new UUID; request and response share it), ``ce-type``
``org.kubeflow.serving.inference.request|response``, ``ce-source``, ``ce-time``,
``ce-inferenceservicename``, ``ce-namespace``, ``ce-component``, ``ce-endpoint`` (the
revision) and the payload's ``content-type``. ``mode``: ``all``, ``request`` or ``response``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from flowyard.serving.proxy import Request, Response

_QUEUE = 10_000
_TYPES = {
    "request": "org.kubeflow.serving.inference.request",
    "response": "org.kubeflow.serving.inference.response",
}


class EventLogger:
    def __init__(self, client: httpx.AsyncClient, namespace: str, name: str) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.dropped = 0
        self.failed = 0
        self._queue: asyncio.Queue[tuple[str, dict[str, str], bytes]] | None = None
        self._task: asyncio.Task[None] | None = None

    def log(
        self,
        logger: dict[str, Any],
        component: str,
        revision: str,
        request: Request,
        response: Response,
    ) -> None:
        mode = logger.get("mode") or "all"
        url = str(logger.get("url") or "")
        headers = request.headers
        request_id = next((v.decode() for k, v in headers if k == b"x-request-id"), "")
        request_id = request_id or str(uuid.uuid4())
        base = {
            "ce-specversion": "1.0",
            "ce-id": request_id,
            "ce-source": f"http://localhost/{self.namespace}/{self.name}/{component}",
            "ce-time": datetime.now(UTC).isoformat(),
            "ce-inferenceservicename": self.name,
            "ce-namespace": self.namespace,
            "ce-component": component,
            "ce-endpoint": revision,
        }
        request_type = next((v.decode() for k, v in headers if k == b"content-type"), "")
        if mode in ("all", "request"):
            self._put(url, base, "request", request_type or "application/json", request.body)
        if mode in ("all", "response"):
            content_type = (response.header(b"content-type") or b"application/json").decode()
            self._put(url, base, "response", content_type, response.body)

    def _put(self, url: str, base: dict[str, str], kind: str, ctype: str, body: bytes) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue(_QUEUE)
            self._task = asyncio.get_running_loop().create_task(self._drain())
        headers = {**base, "ce-type": _TYPES[kind], "content-type": ctype}
        try:
            self._queue.put_nowait((url, headers, body))
        except asyncio.QueueFull:
            self.dropped += 1

    async def _drain(self) -> None:
        assert self._queue is not None
        while True:
            url, headers, body = await self._queue.get()
            try:
                response = await self.client.post(url, content=body, headers=headers, timeout=10)
                if response.status_code >= 400:
                    self.failed += 1
            except httpx.HTTPError:
                self.failed += 1

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(Exception):
                self._task = None
