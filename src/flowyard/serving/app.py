"""The model server's Starlette app: V1, V2 REST, Seldon, health, metrics, status.

Routes (``<m>`` is the served model's name; any other name answers 404):

* V1: ``GET /v1/models``, ``GET /v1/models/<m>``, ``POST /v1/models/<m>:predict``,
  ``POST /v1/models/<m>:explain``
* V2: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``GET /v2/models/<m>[/versions/<v>]``,
  ``.../ready``, ``POST .../infer`` (JSON or the binary tensor extension)
* Seldon: ``POST /api/v0.1/predictions``, ``POST /api/v1.0/predictions``
* ``GET /metrics`` (Prometheus), ``GET /flowyard/status`` (load state for the controller)

Every handler turns errors into the protocol's own error body; no error stops the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import flowyard
from flowyard.errors import NotFoundError
from flowyard.serving import binary
from flowyard.serving.engine import ModelHandle
from flowyard.serving.http import (
    error_response,
    json_response,
    parse_json,
    read_body,
)
from flowyard.serving.infer_types import InferRequest
from flowyard.serving.metrics import Metrics
from flowyard.serving.seldon import seldon_predict

Handler = Callable[[Request], Awaitable[Response]]
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024


class DataPlane:
    def __init__(
        self,
        handle: ModelHandle,
        metrics: Metrics,
        *,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        model_version: str | None = None,
        platform: str = "",
    ) -> None:
        self.handle = handle
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes
        self.version = model_version
        self.platform = platform

    # -- plumbing -----------------------------------------------------------------------------
    def _model(self, request: Request) -> ModelHandle:
        params = request.path_params
        name = params.get("name")
        if name is not None and name != self.handle.name:
            raise NotFoundError(f"Model with name {name} does not exist.")
        version = params.get("version")
        if version is not None and version != (self.version or ""):
            raise NotFoundError(f"Model {name} has no version {version}.")
        return self.handle

    def _headers(self, request: Request) -> dict[str, str]:
        return {} if self.handle.is_array_model else dict(request.headers)

    async def _guarded(
        self,
        protocol: str,
        endpoint: str,
        style: str,
        request: Request,
        work: Callable[[Request], Awaitable[Response]],
    ) -> Response:
        start = time.perf_counter()
        self.metrics.inflight.inc()
        try:
            limit = self.handle.limit
            if limit is None:
                response = await work(request)
            else:
                async with limit:
                    response = await work(request)
        except Exception as exc:
            response = error_response(exc, style)
        finally:
            self.metrics.inflight.dec()
        self.metrics.observe(protocol, endpoint, response.status_code, time.perf_counter() - start)
        return response

    async def _json(self, request: Request) -> Any:
        return parse_json(await read_body(request, self.max_request_bytes))

    # -- V1 -----------------------------------------------------------------------------------
    async def v1_predict(self, request: Request) -> Response:
        return await self._guarded("v1", "predict", "v1", request, self._v1_predict)

    async def _v1_predict(self, request: Request) -> Response:
        handle = self._model(request)
        body = await self._json(request)
        return json_response(await handle.infer_v1(body, self._headers(request)))

    async def v1_explain(self, request: Request) -> Response:
        return await self._guarded("v1", "explain", "v1", request, self._v1_explain)

    async def _v1_explain(self, request: Request) -> Response:
        handle = self._model(request)
        body = await self._json(request)
        return json_response(await handle.explain(body, self._headers(request)))

    async def v1_models(self, request: Request) -> Response:
        return json_response({"models": [self.handle.name]})

    async def v1_model(self, request: Request) -> Response:
        try:
            handle = self._model(request)
            handle.check_ready()
        except Exception as exc:
            return error_response(exc, "v1")
        return json_response({"name": handle.name, "ready": True})

    # -- V2 -----------------------------------------------------------------------------------
    async def v2_infer(self, request: Request) -> Response:
        return await self._guarded("v2", "infer", "v2", request, self._v2_infer)

    async def _v2_infer(self, request: Request) -> Response:
        handle = self._model(request)
        raw = await read_body(request, self.max_request_bytes)
        header_length = request.headers.get(binary.HEADER)
        if header_length is not None:
            body, tail = binary.split_body(raw, header_length)
        else:
            body, tail = parse_json(raw), b""
        infer_request = InferRequest.from_rest(handle.name, body)
        if header_length is not None:
            binary.attach_binary_inputs(infer_request, tail)
        result = await handle.infer_v2(infer_request, self._headers(request))
        result.model_version = self.version
        content, extra = binary.encode_response(infer_request, result)
        if extra is None:
            return Response(content, media_type="application/json")
        return Response(content, headers=extra)

    async def v2_server(self, request: Request) -> Response:
        return json_response(
            {
                "name": "flowyard",
                "version": flowyard.__version__,
                "extensions": ["binary_tensor_data"],
            }
        )

    async def v2_live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def v2_ready(self, request: Request) -> Response:
        ready = self.handle.ready
        return json_response({"ready": ready}, status=200 if ready else 503)

    async def v2_model_ready(self, request: Request) -> Response:
        try:
            handle = self._model(request)
        except Exception as exc:
            return error_response(exc, "v2")
        ready = handle.ready
        return json_response({"name": handle.name, "ready": ready}, status=200 if ready else 503)

    async def v2_model(self, request: Request) -> Response:
        try:
            handle = self._model(request)
            handle.check_ready()
        except Exception as exc:
            return error_response(exc, "v2")
        inputs, outputs = handle.metadata()
        body: dict[str, Any] = {
            "name": handle.name,
            "versions": [self.version] if self.version else [],
            "platform": self.platform,
            "inputs": inputs,
            "outputs": outputs,
        }
        return json_response(body)

    # -- Seldon, metrics, status --------------------------------------------------------------
    async def seldon(self, request: Request) -> Response:
        return await self._guarded("seldon", "predictions", "seldon", request, self._seldon)

    async def _seldon(self, request: Request) -> Response:
        body = await self._json(request)
        return json_response(await seldon_predict(self.handle, body, self._headers(request)))

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)

    async def status(self, request: Request) -> Response:
        handle = self.handle
        body = {"model": handle.name, "state": handle.state}
        if handle.failure:
            body.update(reason="ModelLoadFailed", message=handle.failure)
        return json_response(body)

    def routes(self) -> list[Route]:
        v2m = "/v2/models/{name}"
        v2v = "/v2/models/{name}/versions/{version}"
        return [
            Route("/v1/models/{name}:predict", self.v1_predict, methods=["POST"]),
            Route("/v2/models/{name}/infer", self.v2_infer, methods=["POST"]),
            Route(v2v + "/infer", self.v2_infer, methods=["POST"]),
            Route("/v1/models/{name}:explain", self.v1_explain, methods=["POST"]),
            Route("/api/v0.1/predictions", self.seldon, methods=["POST"]),
            Route("/api/v1.0/predictions", self.seldon, methods=["POST"]),
            Route("/v2/health/live", self.v2_live, methods=["GET"]),
            Route("/v2/health/ready", self.v2_ready, methods=["GET"]),
            Route("/v1/models", self.v1_models, methods=["GET"]),
            Route("/v1/models/{name}", self.v1_model, methods=["GET"]),
            Route("/v2", self.v2_server, methods=["GET"]),
            Route(v2m + "/ready", self.v2_model_ready, methods=["GET"]),
            Route(v2v + "/ready", self.v2_model_ready, methods=["GET"]),
            Route(v2m, self.v2_model, methods=["GET"]),
            Route(v2v, self.v2_model, methods=["GET"]),
            Route("/metrics", self.metrics_endpoint, methods=["GET"]),
            Route("/flowyard/status", self.status, methods=["GET"]),
        ]


def build_app(
    plane: DataPlane,
    on_start: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> Starlette:
    """The ASGI app. Startup begins loading the model in the background (so liveness answers
    at once and readiness turns true when the model is loaded), then runs ``on_start``."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        load = asyncio.create_task(plane.handle.load())
        if on_start is not None:
            await on_start()
        try:
            yield
        finally:
            if on_stop is not None:
                await on_stop()
            load.cancel()
            plane.handle.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = int(getattr(exc, "status_code", 404))
        return json_response(
            {"error": f"no route {request.method} {request.url.path}"}, status=status
        )

    return Starlette(
        routes=plane.routes(),
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )
