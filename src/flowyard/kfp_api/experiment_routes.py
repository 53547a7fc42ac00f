"""``/apis/v2beta1/experiments``: create, get, list, archive, unarchive, delete.

Archiving an experiment archives its runs and disables its recurring runs, as KFP does;
unarchiving restores the experiment only. Deleting an experiment keeps its runs and recurring
runs (as KFP does); they then report no experiment_id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from flowyard.api.auth import User
from flowyard.api.json import JSONResponse
from flowyard.errors import AlreadyExistsError, BadRequestError
from flowyard.kfp_api import convert
from flowyard.kfp_api.context import KfpContext, namespace_of, user_of
from flowyard.kfp_api.names import STORAGE_STATE, stable_name
from flowyard.pipelines.experiments import EXPERIMENT
from flowyard.pipelines.kinds import RUN
from flowyard.pipelines.recurring import RECURRING_RUN
from flowyard.resources.meta import Resource

ROOT = "/apis/v2beta1/experiments"
KEYS = {
    "name": "display_name",
    "display_name": "display_name",
    "experiment_id": "id",
    "created_at": "created_at",
    "description": "description",
    "storage_state": "storage_state",
    "namespace": "ns",
}
DEFAULT_EXPERIMENT = "Default"


def experiment_name(display: str) -> str:
    return "default" if display == DEFAULT_EXPERIMENT else stable_name(display)


def ensure_experiment(ctx: KfpContext, user: User, namespace: str, display: str) -> Resource:
    """The experiment with this display name, created if missing (KFP's ``Default``)."""
    name = experiment_name(display)
    ctx.index.sync()
    if (row := ctx.index.by_name(EXPERIMENT, namespace, name)) is not None:
        return ctx.get(user, EXPERIMENT, row["id"])
    try:
        return ctx.create(user, EXPERIMENT, namespace, {"name": name}, {"displayName": display})
    except AlreadyExistsError:  # created concurrently
        return ctx.service.get(user, EXPERIMENT, namespace, name)


class ExperimentApi:
    def __init__(self, ctx: KfpContext) -> None:
        self.ctx = ctx

    def last_runs(self, namespace: str) -> dict[str, float]:
        """Each experiment's newest run creation time in ``namespace``: one pass over the runs
        for a whole page of experiments."""
        last: dict[str, float] = {}
        for r in self.ctx.index.select(RUN, lambda r: r["ns"] == namespace):
            if r["created_at"] > last.get(r["experiment"], float("-inf")):
                last[r["experiment"]] = r["created_at"]
        return last

    def to_json(self, obj: Resource, last: dict[str, float] | None = None) -> dict[str, Any]:
        md = obj["metadata"]
        if last is None:
            last = self.last_runs(md["namespace"])
        return convert.experiment_to_kfp(obj, last.get(md["name"]))

    def set_storage(self, user: User, obj: Resource, state: str) -> None:
        value = "ARCHIVED" if state == "ARCHIVED" else None
        self.ctx.patch(user, EXPERIMENT, obj, {"metadata": {"labels": {STORAGE_STATE: value}}})
        if state != "ARCHIVED":
            return
        md = obj["metadata"]
        for info in (RUN, RECURRING_RUN):
            rows = self.ctx.index.select(
                info, lambda r: r["ns"] == md["namespace"] and r["experiment"] == md["name"]
            )
            for row in rows:
                patch: dict[str, Any] = {"metadata": {"labels": {STORAGE_STATE: "ARCHIVED"}}}
                if info is RECURRING_RUN:
                    patch = {"spec": {"mode": "DISABLE"}}
                self.ctx.service.patch(user, info, row["ns"], row["rname"], patch)
        self.ctx.index.sync()


def build(router: APIRouter, ctx: KfpContext) -> None:
    api = ExperimentApi(ctx)

    @router.post(ROOT + "/{experiment_id}:archive")
    def archive(request: Request, experiment_id: str) -> Response:
        user = user_of(request)
        api.set_storage(user, ctx.get(user, EXPERIMENT, experiment_id), "ARCHIVED")
        return JSONResponse({})

    @router.post(ROOT + "/{experiment_id}:unarchive")
    def unarchive(request: Request, experiment_id: str) -> Response:
        user = user_of(request)
        api.set_storage(user, ctx.get(user, EXPERIMENT, experiment_id), "AVAILABLE")
        return JSONResponse({})

    @router.post(ROOT)
    def create(request: Request, body: dict[str, Any]) -> Response:
        display = str(body.get("display_name") or body.get("name") or "").strip()
        if not display:
            raise BadRequestError("Failed to create experiment: display_name is required")
        ns = namespace_of(body.get("namespace"))
        try:
            obj = ctx.create(
                user_of(request),
                EXPERIMENT,
                ns,
                {"name": experiment_name(display)},
                {"displayName": display, "description": body.get("description") or ""},
            )
        except AlreadyExistsError:
            raise AlreadyExistsError(
                f"Failed to create experiment: an experiment named {display!r} already exists "
                f"in namespace {ns!r}"
            ) from None
        return JSONResponse(api.to_json(obj))

    @router.get(ROOT)
    def list_experiments(request: Request) -> Response:
        q = request.query_params
        items, total, token = ctx.list(
            user_of(request), EXPERIMENT, namespace_of(q.get("namespace")), q, KEYS
        )
        last = api.last_runs(namespace_of(q.get("namespace")))
        return JSONResponse(
            {
                "experiments": [api.to_json(e, last) for e in items],
                "total_size": total,
                "next_page_token": token,
            }
        )

    @router.get(ROOT + "/{experiment_id}")
    def get(request: Request, experiment_id: str) -> Response:
        return JSONResponse(api.to_json(ctx.get(user_of(request), EXPERIMENT, experiment_id)))

    @router.delete(ROOT + "/{experiment_id}")
    def delete(request: Request, experiment_id: str) -> Response:
        user = user_of(request)
        obj = ctx.get(user, EXPERIMENT, experiment_id)
        ctx.delete(user, EXPERIMENT, obj)
        return JSONResponse({})
