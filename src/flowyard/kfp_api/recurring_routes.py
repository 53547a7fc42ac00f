"""``/apis/v2beta1/recurringruns``: create, get, list, enable, disable, delete. The scheduler
itself is :class:`flowyard.pipelines.recurring.RecurringRunController`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from flowyard.api.json import JSONResponse
from flowyard.errors import BadRequestError
from flowyard.kfp_api import convert
from flowyard.kfp_api.context import KfpContext, namespace_of, user_of
from flowyard.kfp_api.names import generate_prefix
from flowyard.kfp_api.run_routes import _translator, run_spec
from flowyard.pipelines.experiments import EXPERIMENT
from flowyard.pipelines.recurring import RECURRING_RUN
from flowyard.resources.meta import Resource

ROOT = "/apis/v2beta1/recurringruns"
KEYS = {
    "name": "display_name",
    "display_name": "display_name",
    "recurring_run_id": "id",
    "created_at": "created_at",
    "experiment_id": "experiment",
    "experiment": "experiment",
    "mode": "mode",
    "description": "description",
    "namespace": "ns",
}


def _int(value: Any, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequestError(f"{field} must be an integer, got {value!r}") from None


def trigger_spec(trigger: Any) -> dict[str, Any]:
    """KFP's trigger (cron_schedule or periodic_schedule) in flowyard's camelCase."""
    if not isinstance(trigger, dict):
        raise BadRequestError("a recurring run needs trigger.cron_schedule or periodic_schedule")
    out: dict[str, Any] = {}
    cron, periodic = trigger.get("cron_schedule"), trigger.get("periodic_schedule")
    if cron:
        out["cronSchedule"] = {"cron": str(cron.get("cron") or "")}
        sched = cron
        key = "cronSchedule"
    elif periodic:
        interval = _int(
            periodic.get("interval_second"), "trigger.periodic_schedule.interval_second"
        )
        out["periodicSchedule"] = {"intervalSecond": interval}
        sched = periodic
        key = "periodicSchedule"
    else:
        raise BadRequestError("a recurring run needs trigger.cron_schedule or periodic_schedule")
    for kfp_name, name in (("start_time", "startTime"), ("end_time", "endTime")):
        if sched.get(kfp_name):
            out[key][name] = str(sched[kfp_name])
    return out


def build(router: APIRouter, ctx: KfpContext) -> None:
    def to_json(obj: Resource) -> dict[str, Any]:
        return convert.recurring_to_kfp(obj, ctx.ids)

    def set_mode(mode: str) -> Any:
        def handler(request: Request, recurring_run_id: str) -> Response:
            user = user_of(request)
            obj = ctx.get(user, RECURRING_RUN, recurring_run_id)
            ctx.patch(user, RECURRING_RUN, obj, {"spec": {"mode": mode}})
            return JSONResponse({})

        return handler

    router.add_api_route(ROOT + "/{recurring_run_id}:enable", set_mode("ENABLE"), methods=["POST"])
    router.add_api_route(
        ROOT + "/{recurring_run_id}:disable", set_mode("DISABLE"), methods=["POST"]
    )

    @router.post(ROOT)
    def create(request: Request, body: dict[str, Any]) -> Response:
        user = user_of(request)
        ns, spec = run_spec(ctx, user, body, "recurring run")
        display = spec["displayName"]
        spec |= {
            "trigger": trigger_spec(body.get("trigger")),
            "maxConcurrency": _int(body.get("max_concurrency") or 1, "max_concurrency"),
            "noCatchup": bool(body.get("no_catchup")),
            "mode": "DISABLE" if body.get("mode") == "DISABLE" else "ENABLE",
        }
        obj = ctx.create(user, RECURRING_RUN, ns, {"generateName": generate_prefix(display)}, spec)
        return JSONResponse(to_json(obj))

    @router.get(ROOT)
    def list_recurring(request: Request) -> Response:
        q = request.query_params
        scope = None
        namespace: str | None = namespace_of(q.get("namespace"))
        if q.get("experiment_id"):
            exp = ctx.row(EXPERIMENT, q["experiment_id"])
            namespace = exp["ns"]
            scope = lambda r: r["experiment"] == exp["rname"]  # noqa: E731
        items, total, token = ctx.list(
            user_of(request),
            RECURRING_RUN,
            namespace,
            q,
            KEYS,
            scope=scope,
            translate=_translator(ctx),
        )
        return JSONResponse(
            {
                "recurringRuns": [to_json(r) for r in items],
                "total_size": total,
                "next_page_token": token,
            }
        )

    @router.get(ROOT + "/{recurring_run_id}")
    def get(request: Request, recurring_run_id: str) -> Response:
        return JSONResponse(to_json(ctx.get(user_of(request), RECURRING_RUN, recurring_run_id)))

    @router.delete(ROOT + "/{recurring_run_id}")
    def delete(request: Request, recurring_run_id: str) -> Response:
        user = user_of(request)
        ctx.delete(user, RECURRING_RUN, ctx.get(user, RECURRING_RUN, recurring_run_id))
        return JSONResponse({})
