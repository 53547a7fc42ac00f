"""The Kubeflow Pipelines v2beta1 REST API on flowyard (``kfp.Client(host=FLOWYARD_URL)``).

:func:`build_router` returns the FastAPI router for ``/apis/v2beta1/...``; include it before the
generic resource routes (whose ``/apis/{group}/{version}`` pattern would otherwise match). KFP
objects map onto ``pipelines.kubeflow.org/v2beta1`` resources; see ``docs/kfp-api.md``.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from flowyard.api.json import JSONResponse
from flowyard.api.service import ResourceService
from flowyard.kfp_api import experiment_routes, pipeline_routes, recurring_routes, run_routes
from flowyard.kfp_api.context import KfpContext
from flowyard.kfp_api.errors import KfpRoute


def register_kinds() -> None:
    """Register every kind the KFP API serves (idempotent)."""
    from flowyard.pipelines.experiments import register_experiment_kind
    from flowyard.pipelines.kinds import register_kinds as register_pipeline_kinds
    from flowyard.pipelines.recurring import register_recurring_run_kind

    register_pipeline_kinds()
    register_experiment_kind()
    register_recurring_run_kind()


def build_router(service: ResourceService) -> APIRouter:
    """The KFP v2beta1 API over ``service`` (its store and authorizer)."""
    register_kinds()
    ctx = KfpContext(service)
    ctx.warm_up()
    router = APIRouter(route_class=KfpRoute, tags=["kfp"])

    @router.get("/apis/v2beta1/healthz")
    def healthz() -> Response:
        return JSONResponse({"multi_user": False, "pipeline_store": "flowyard"})

    pipeline_routes.build(router, ctx)
    experiment_routes.build(router, ctx)
    run_routes.build(router, ctx)
    recurring_routes.build(router, ctx)
    return router


def controllers() -> list[type]:
    """The controllers of the KFP API's own kinds (registers the kinds first)."""
    from flowyard.pipelines.recurring import RecurringRunController

    register_kinds()
    return [RecurringRunController]


__all__ = ["build_router", "controllers", "register_kinds"]
