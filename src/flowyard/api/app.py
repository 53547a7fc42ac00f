"""The ASGI application: discovery, resource routes, auth and error mapping."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from flowyard import __version__, kfp_api
from flowyard.api import discovery, errors, routes
from flowyard.api.auth import Authenticator, AuthMiddleware, Authorizer
from flowyard.api.service import ResourceService
from flowyard.api.watch import WatchHub
from flowyard.executors.base import BaseExecutor
from flowyard.store.base import BaseStore
from flowyard.tuning import study_api


def create_app(
    store: BaseStore,
    executor: BaseExecutor,
    authenticator: Authenticator,
    authorizer: Authorizer,
    *,
    on_start: Callable[[], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> Any:
    """Build the server app. ``on_start`` runs in a thread after the app starts serving
    (``/readyz`` turns ready when it returns); ``on_stop`` runs at shutdown."""
    hub = WatchHub(store)
    ready = threading.Event()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        hub.start(asyncio.get_running_loop())

        def starter() -> None:
            if on_start:
                on_start()
            ready.set()

        threading.Thread(target=starter, name="platform-start", daemon=True).start()
        try:
            yield
        finally:
            hub.stop()
            if on_stop:
                await asyncio.to_thread(on_stop)

    app = FastAPI(
        title="flowyard",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Kubeflow without the cluster: Kubernetes-shaped resource API.",
    )
    app.state.store = store
    app.state.executor = executor
    app.state.watch_hub = hub
    app.state.ready = ready
    service = ResourceService(store, authorizer)
    app.state.service = service
    errors.install(app)
    app.include_router(kfp_api.build_router(service))  # before /apis/{group}/{version}
    app.include_router(discovery.build_router())
    app.include_router(study_api.build_router(service))  # /tuning/v1/... (Vizier-style studies)
    app.include_router(routes.build_router(service))
    return AuthMiddleware(app, authenticator)
