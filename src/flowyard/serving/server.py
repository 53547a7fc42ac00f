"""The model-server process: ``python -m flowyard.serving.server --model-name NAME ...``.

One process (or ``--workers N`` processes sharing the port) serving one model over V1, V2 REST,
Seldon and, with ``--grpc-port``, V2 gRPC. ``--model-dir`` takes a directory or any storageUri
(see :mod:`flowyard.serving.storage`); downloads happen in the background after the port is
open, so ``/v2/health/live`` answers at once and readiness turns true when the model is loaded.
A model that fails to load leaves the server up and not ready, with the reason at
``/flowyard/status`` (for the controller's ``modelStatus``) and on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from starlette.applications import Starlette

from flowyard.serving.app import DEFAULT_MAX_REQUEST_BYTES, DataPlane, build_app
from flowyard.serving.engine import ModelHandle
from flowyard.serving.metrics import Metrics

_ENV = "FLOWYARD_SERVING_CONFIG"
RUNTIME_CHOICES = ["sklearn", "xgboost", "lightgbm", "onnx", "pytorch", "custom"]


@dataclass
class ServerConfig:
    model_name: str
    model_dir: str
    runtime: str
    model_class: str | None = None
    protocol: str = "v1"
    host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_port: int = 0
    workers: int = 1
    batch_max_size: int = 0
    batch_max_latency_ms: float = 500.0
    container_concurrency: int = 0
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    model_version: str | None = None
    predict_threads: int = 4
    access_log: bool = False
    predictor_host: str | None = None


def parse_args(argv: Sequence[str] | None = None) -> ServerConfig:
    p = argparse.ArgumentParser(
        prog="python -m flowyard.serving.server",
        description="Serve one model over V1, V2 and Seldon protocols.",
    )
    # KServe's own spellings (--model_name, --http_port, --predictor_host) are what the
    # controller passes to transformers and explainers, so both are accepted.
    p.add_argument("--model-name", "--model_name", dest="model_name", required=True)
    p.add_argument("--model-dir", required=True, help="directory or storageUri of the model")
    p.add_argument("--runtime", required=True, choices=RUNTIME_CHOICES)
    p.add_argument("--model-class", help="module:Class of a custom model (--runtime custom)")
    p.add_argument(
        "--protocol",
        choices=["v1", "v2"],
        default="v1",
        help="protocolVersion of the InferenceService (all planes are served)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--http-port", "--http_port", dest="http_port", type=int, default=8080)
    p.add_argument(
        "--predictor-host",
        "--predictor_host",
        dest="predictor_host",
        default=None,
        help="HOST:PORT of the predictor; a model without its own predict() forwards to it",
    )
    p.add_argument("--grpc-port", type=int, default=0, help="V2 gRPC port (0 = off)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--batch-max-size", type=int, default=0, help="batcher on when > 0")
    p.add_argument("--batch-max-latency-ms", type=float, default=500.0)
    p.add_argument("--container-concurrency", type=int, default=0, help="0 = unlimited")
    p.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    p.add_argument("--model-version", default=None)
    p.add_argument("--predict-threads", type=int, default=4)
    p.add_argument("--access-log", action="store_true", help="log every request (off: hot path)")
    ns = p.parse_args(argv)
    if ns.runtime == "custom" and not ns.model_class:
        p.error("--runtime custom needs --model-class module:Class")
    if ns.workers < 1 or ns.predict_threads < 1:
        p.error("--workers and --predict-threads must be at least 1")
    return ServerConfig(**{k.replace("-", "_"): v for k, v in vars(ns).items()})


def make_factory(cfg: ServerConfig) -> Any:
    """Fetch (storage) and construct the model; runs in a worker thread at startup."""

    def factory() -> Any:
        from flowyard.serving import storage
        from flowyard.serving.runtimes import create_model

        local = storage.resolve(cfg.model_dir)
        model = create_model(cfg.runtime, cfg.model_name, str(local), cfg.model_class)
        if cfg.predictor_host:
            model.predictor_host = cfg.predictor_host
        return model

    return factory


def create_app(cfg: ServerConfig) -> Starlette:
    metrics = Metrics(cfg.model_name)
    handle = ModelHandle(
        cfg.model_name,
        make_factory(cfg),
        batch_max_size=cfg.batch_max_size,
        batch_max_latency_ms=cfg.batch_max_latency_ms,
        container_concurrency=cfg.container_concurrency,
        threads=cfg.predict_threads,
        on_batch=metrics.batch,
    )
    plane = DataPlane(
        handle,
        metrics,
        max_request_bytes=cfg.max_request_bytes,
        model_version=cfg.model_version,
        platform=_platform(cfg.runtime),
    )
    grpc_server: Any = None

    async def on_start() -> None:
        nonlocal grpc_server
        if cfg.grpc_port:
            from flowyard.serving.grpc_server import start_grpc

            grpc_server = await start_grpc(plane, cfg.host, cfg.grpc_port)

    async def on_stop() -> None:
        if grpc_server is not None:
            await grpc_server.stop(grace=1.0)

    return build_app(plane, on_start, on_stop)


def _platform(runtime: str) -> str:
    return {"onnx": "onnx_onnxv1", "pytorch": "pytorch_torchscript"}.get(runtime, runtime)


def app_from_env() -> Starlette:
    """Factory for ``--workers > 1``: each worker rebuilds the app from the JSON config."""
    return create_app(ServerConfig(**json.loads(os.environ[_ENV])))


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    import uvicorn

    options: dict[str, Any] = {
        "host": cfg.host,
        "port": cfg.http_port,
        "access_log": cfg.access_log,
        "log_level": "info" if cfg.access_log else "warning",
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "proxy_headers": False,  # replicas sit on loopback; no forwarded-header rewriting
    }
    if cfg.workers > 1:
        os.environ[_ENV] = json.dumps(asdict(cfg))
        uvicorn.run(
            "flowyard.serving.server:app_from_env", factory=True, workers=cfg.workers, **options
        )
    else:
        uvicorn.run(create_app(cfg), **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
