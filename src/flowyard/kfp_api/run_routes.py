"""``/apis/v2beta1/runs``: create, get (with task details), list, terminate, retry, archive,
unarchive, delete, and reading a task's output artifact.

A KFP run is a ``pipelines.kubeflow.org/v2beta1 Run`` resource; the Run controller executes it.
Terminate and retry are spec changes the controller acts on (``spec.terminate``,
``spec.retry``), exactly what ``flowyard`` itself does.
"""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from fastapi import APIRouter, Request
from starlette.responses import Response

from flowyard.api.auth import User
from flowyard.api.json import JSONResponse
from flowyard.errors import BadRequestError, NotFoundError
from flowyard.kfp_api import convert
from flowyard.kfp_api.context import KfpContext, namespace_of, user_of
from flowyard.kfp_api.errors import FailedPreconditionError
from flowyard.kfp_api.names import STORAGE_STATE, generate_prefix
from flowyard.kfp_api.run_source import (
    experiment_of,
    pipeline_namespace,
    pipeline_source,
    runtime_config,
)
from flowyard.pipelines.experiments import EXPERIMENT
from flowyard.pipelines.kinds import FINAL_RUN_STATES, RUN
from flowyard.pipelines.recurring import RECURRING_RUN
from flowyard.resources.meta import Resource

ROOT = "/apis/v2beta1/runs"
KEYS = {
    "name": "display_name",
    "display_name": "display_name",
    "run_id": "id",
    "created_at": "created_at",
    "finished_at": "finished_at",
    "state": "state",
    "storage_state": "storage_state",
    "experiment_id": "experiment",
    "experiment": "experiment",
    "recurring_run_id": "recurring_run",
    "description": "description",
    "namespace": "ns",
}
MAX_ARTIFACT_BYTES = 256 * 1024 * 1024


def run_json(ctx: KfpContext, obj: Resource) -> dict[str, Any]:
    return convert.run_to_kfp(obj, ctx.ids)


def _translator(ctx: KfpContext) -> Any:
    """Filter values on experiment/recurring run: KFP ids (or display names) to names."""

    def translate(field: str, value: Any) -> Any:
        info = {"experiment": EXPERIMENT, "recurring_run": RECURRING_RUN}.get(field)
        if info is None:
            return value
        row = ctx.index.get(info, str(value))
        if row is None:
            named = ctx.index.select(info, lambda r: r["display_name"] == value)
            row = named[0] if named else None
        return row["rname"] if row else f"\0unknown:{value}"

    return translate


def run_spec(
    ctx: KfpContext, user: User, body: dict[str, Any], what: str
) -> tuple[str, dict[str, Any]]:
    """The namespace and the spec fields a run and a recurring run share, from a KFP body
    (``what`` names the object in errors: "run", "recurring run")."""
    display = str(body.get("display_name") or "").strip()
    if not display:
        raise BadRequestError(f"Failed to create a {what}: display_name is required")
    source = pipeline_source(ctx, body)
    ns, experiment = experiment_of(ctx, user, body)
    pipeline_namespace(ctx, source, ns)
    spec = {
        "displayName": display,
        "description": body.get("description") or "",
        **source,
        "runtimeConfig": runtime_config(body),
        "experimentName": experiment,
    }
    if body.get("service_account"):
        spec["serviceAccount"] = body["service_account"]
    return ns, spec


def create_run(ctx: KfpContext, request: Request, body: dict[str, Any]) -> Resource:
    user = user_of(request)
    ns, spec = run_spec(ctx, user, body, "run")
    display = spec["displayName"]
    return ctx.create(user, RUN, ns, {"generateName": generate_prefix(display)}, spec)


def _artifact_path(run: Resource, node_id: str, artifact: str) -> Path:
    tasks = ((run.get("status") or {}).get("runDetails") or {}).get("taskDetails") or []
    task = next((t for t in tasks if node_id in (t.get("taskId"), t.get("displayName"))), None)
    if task is None:
        raise NotFoundError(f"run {run['metadata']['uid']!r} has no task {node_id!r}")
    arts = ((task.get("outputs") or {}).get("artifacts") or {}).get(artifact)
    items = arts if isinstance(arts, list) else [arts] if arts else []
    if not items or not items[0].get("uri"):
        raise NotFoundError(f"task {node_id!r} has no output artifact {artifact!r}")
    uri = str(items[0]["uri"])
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise BadRequestError(f"artifact {uri!r} is not on this machine; read it from its store")
    path = Path(unquote(parsed.path) if parsed.scheme else uri)
    if not path.exists():
        raise NotFoundError(f"artifact {artifact!r} of task {node_id!r}: {uri} no longer exists")
    return path


def _tar_gz(path: Path) -> bytes:
    size = (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else (path.stat().st_size)
    )
    if size > MAX_ARTIFACT_BYTES:
        raise BadRequestError(f"artifact {path.name} is larger than 256 MiB; read it directly")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        archive.add(path, arcname=path.name)
    return buf.getvalue()


def build(router: APIRouter, ctx: KfpContext) -> None:
    def action(path: str, fn: Any) -> None:
        router.add_api_route(ROOT + "/{run_id}:" + path, fn, methods=["POST"])

    def terminate(request: Request, run_id: str) -> Response:
        run = ctx.get(user_of(request), RUN, run_id)
        if (run.get("status") or {}).get("state") not in FINAL_RUN_STATES:
            ctx.patch(user_of(request), RUN, run, {"spec": {"terminate": True}})
        return JSONResponse({})

    def retry(request: Request, run_id: str) -> Response:
        run = ctx.get(user_of(request), RUN, run_id)
        state = (run.get("status") or {}).get("state")
        if state not in ("FAILED", "CANCELED"):
            raise FailedPreconditionError(
                f"Failed to retry run {run_id!r}: only a FAILED or CANCELED run can be retried; "
                f"this one is {state or 'PENDING'}"
            )
        retries = int(run["spec"].get("retry") or 0) + 1
        ctx.patch(user_of(request), RUN, run, {"spec": {"retry": retries, "terminate": False}})
        return JSONResponse({})

    def storage(value: str | None) -> Any:
        def handler(request: Request, run_id: str) -> Response:
            run = ctx.get(user_of(request), RUN, run_id)
            ctx.patch(user_of(request), RUN, run, {"metadata": {"labels": {STORAGE_STATE: value}}})
            return JSONResponse({})

        return handler

    action("terminate", terminate)
    action("retry", retry)
    action("archive", storage("ARCHIVED"))
    action("unarchive", storage(None))

    @router.get(ROOT + "/{run_id}/nodes/{node_id:path}/artifacts/{artifact_name}:read")
    def read_artifact(request: Request, run_id: str, node_id: str, artifact_name: str) -> Response:
        run = ctx.get(user_of(request), RUN, run_id)
        data = _tar_gz(_artifact_path(run, node_id, artifact_name))
        return JSONResponse({"data": base64.b64encode(data).decode("ascii")})

    @router.post(ROOT)
    def create(request: Request, body: dict[str, Any]) -> Response:
        if request.query_params.get("experiment_id") and not body.get("experiment_id"):
            body["experiment_id"] = request.query_params["experiment_id"]
        return JSONResponse(run_json(ctx, create_run(ctx, request, body)))

    @router.get(ROOT)
    def list_runs(request: Request) -> Response:
        q = request.query_params
        exp_id = q.get("experiment_id")
        scope = None
        namespace: str | None = namespace_of(q.get("namespace"))
        if exp_id:
            exp = ctx.row(EXPERIMENT, exp_id)
            namespace = exp["ns"]
            scope = lambda r: r["experiment"] == exp["rname"]  # noqa: E731
        items, total, token = ctx.list(
            user_of(request), RUN, namespace, q, KEYS, scope=scope, translate=_translator(ctx)
        )
        return JSONResponse(
            {
                "runs": [run_json(ctx, r) for r in items],
                "total_size": total,
                "next_page_token": token,
            }
        )

    @router.get(ROOT + "/{run_id}")
    def get(request: Request, run_id: str) -> Response:
        return JSONResponse(run_json(ctx, ctx.get(user_of(request), RUN, run_id)))

    @router.delete(ROOT + "/{run_id}")
    def delete(request: Request, run_id: str) -> Response:
        user = user_of(request)
        ctx.delete(user, RUN, ctx.get(user, RUN, run_id))
        return JSONResponse({})
