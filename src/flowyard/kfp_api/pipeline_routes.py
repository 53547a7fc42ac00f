"""``/apis/v2beta1/pipelines``: pipelines and pipeline versions (upload, create from a spec or
URL, list, get, get by name, delete, download)."""

from __future__ import annotations

import hashlib
from typing import Any

import yaml
from fastapi import APIRouter, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from flowyard.api.json import JSONResponse
from flowyard.errors import AlreadyExistsError, BadRequestError, InvalidError, NotFoundError
from flowyard.kfp_api import convert, pipeline_updates
from flowyard.kfp_api.context import KfpContext, namespace_of, user_of
from flowyard.kfp_api.errors import FailedPreconditionError, KfpRoute
from flowyard.kfp_api.names import slug, stable_name
from flowyard.kfp_api.packages import fetch_package, read_package, split_docs
from flowyard.pipelines.kinds import PIPELINE, PIPELINE_VERSION
from flowyard.resources.meta import Resource

ROOT = "/apis/v2beta1/pipelines"
KEYS = {
    "name": "display_name",
    "display_name": "display_name",
    "pipeline_id": "id",
    "created_at": "created_at",
    "description": "description",
    "namespace": "ns",
}
Docs = tuple[dict[str, Any], dict[str, Any]]
VERSION_KEYS = {**KEYS, "pipeline_version_id": "id"}
del VERSION_KEYS["pipeline_id"]


def version_name(pipeline: str, display: str) -> str:
    """A deterministic resource name for version ``display`` of pipeline ``pipeline``."""
    digest = hashlib.sha256(f"{pipeline}\0{display}".encode()).hexdigest()[:8]
    return f"{slug(pipeline, 30)}-{slug(display, 22)}-{digest}"


class PipelineApi:
    def __init__(self, ctx: KfpContext) -> None:
        self.ctx = ctx

    def ids(self, info: Any, ns: str, name: str) -> str | None:
        return self.ctx.ids(info, ns, name)

    def version_json(self, obj: Resource) -> dict[str, Any]:
        return convert.version_to_kfp(obj, self.ctx.ids)

    def create_pipeline(
        self, request: Request, body: dict[str, Any], namespace: str | None = None
    ) -> Resource:
        display = str(body.get("display_name") or body.get("name") or "").strip()
        if not display:
            raise BadRequestError("pipeline display_name is required")
        ns = namespace_of(namespace or body.get("namespace"))
        spec: dict[str, Any] = {
            "displayName": display,
            "description": body.get("description") or "",
        }
        if body.get("tags"):
            if causes := pipeline_updates.tag_causes(body["tags"], "tags"):
                raise InvalidError("Failed to create a pipeline: invalid tags", causes=causes)
            spec["tags"] = dict(body["tags"])
        try:
            self.ctx.index.sync()  # a renamed pipeline keeps its resource name: check names too
            if self.ctx.index.select(
                PIPELINE, lambda r: r["ns"] == ns and r["display_name"] == display
            ):
                raise AlreadyExistsError(display)
            return self.ctx.create(
                user_of(request), PIPELINE, ns, {"name": stable_name(display)}, spec
            )
        except AlreadyExistsError:
            raise AlreadyExistsError(
                f"Failed to create a pipeline: a pipeline named {display!r} already exists in "
                f"namespace {ns!r}; choose another name or upload a new version of it"
            ) from None

    def create_version(
        self,
        request: Request,
        pipeline: Resource,
        display: str,
        docs: tuple[dict[str, Any], dict[str, Any]],
        *,
        description: str = "",
        url: str | None = None,
    ) -> Resource:
        pmd = pipeline["metadata"]
        spec: dict[str, Any] = {
            "pipelineName": pmd["name"],
            "displayName": display,
            "description": description,
            "pipelineSpec": docs[0],
        }
        if docs[1]:
            spec["platformSpec"] = docs[1]
        if url:
            spec["packageUrl"] = {"pipelineUrl": url}
        try:
            return self.ctx.create(
                user_of(request),
                PIPELINE_VERSION,
                pmd["namespace"],
                {"name": version_name(pmd["name"], display)},
                spec,
            )
        except AlreadyExistsError:
            raise AlreadyExistsError(
                "Failed to create a pipeline version: pipeline "
                f"{pipeline['spec'].get('displayName')!r} already has a version named {display!r}"
            ) from None

    def create_with_version(
        self,
        request: Request,
        pipeline_body: dict[str, Any],
        docs: tuple[dict[str, Any], dict[str, Any]],
        version_display: str | None = None,
        url: str | None = None,
    ) -> Resource:
        """A pipeline and its first version; no pipeline is left behind if the version fails."""
        pipeline = self.create_pipeline(request, pipeline_body)
        try:
            self.create_version(
                request,
                pipeline,
                version_display or pipeline["spec"]["displayName"],
                docs,
                description=pipeline_body.get("description") or "",
                url=url,
            )
        except Exception:
            self.ctx.delete(user_of(request), PIPELINE, pipeline)
            raise
        return pipeline

    @staticmethod
    def docs_from_body(
        version: dict[str, Any],
    ) -> tuple[tuple[dict[str, Any], dict[str, Any]], str | None]:
        """The spec documents of a PipelineVersion body: inline ``pipeline_spec`` or
        ``package_url.pipeline_url``."""
        url = (version.get("package_url") or {}).get("pipeline_url")
        if url:
            data, filename = fetch_package(str(url))
            return read_package(data, filename), str(url)
        spec = version.get("pipeline_spec")
        if isinstance(spec, dict) and spec:
            if "pipeline_spec" in spec and "root" not in spec:
                docs = [spec["pipeline_spec"], spec.get("platform_spec") or {}]
            else:
                docs = [spec]
            return split_docs([d for d in docs if d], "pipeline_spec"), None
        raise BadRequestError("a pipeline version needs package_url.pipeline_url or pipeline_spec")


def _form_file(form: Any) -> UploadFile:
    upload = form.get("uploadfile")
    if upload is None or isinstance(upload, str):
        raise BadRequestError(
            "missing the multipart file field 'uploadfile' with the pipeline package"
        )
    return upload  # type: ignore[no-any-return]


def build(router: APIRouter, ctx: KfpContext) -> None:
    api = PipelineApi(ctx)

    @router.post(ROOT + "/upload")
    async def upload_pipeline(request: Request) -> Response:
        upload = _form_file(await request.form())
        data, filename = await upload.read(), upload.filename or "pipeline"
        q = request.query_params

        def work() -> dict[str, Any]:
            docs = read_package(data, filename)
            display = q.get("display_name") or q.get("name") or filename.split(".")[0]
            body = {
                "display_name": display,
                "description": q.get("description") or "",
                "namespace": q.get("namespace"),
            }
            return convert.pipeline_to_kfp(api.create_with_version(request, body, docs))

        return JSONResponse(await run_in_threadpool(work))

    @router.post(ROOT + "/upload_version")
    async def upload_version(request: Request) -> Response:
        upload = _form_file(await request.form())
        data, filename = await upload.read(), upload.filename or "pipeline"
        q = request.query_params

        def work() -> dict[str, Any]:
            pipeline_id = q.get("pipelineid") or q.get("pipeline_id")
            if not pipeline_id:
                raise BadRequestError("pipelineid is required to upload a pipeline version")
            pipeline = ctx.get(user_of(request), PIPELINE, pipeline_id)
            docs = read_package(data, filename)
            display = q.get("display_name") or q.get("name") or filename.split(".")[0]
            version = api.create_version(
                request, pipeline, display, docs, description=q.get("description") or ""
            )
            return api.version_json(version)

        return JSONResponse(await run_in_threadpool(work))

    @router.post(ROOT + "/create")
    def create_pipeline_and_version(request: Request, body: dict[str, Any]) -> Response:
        pipeline_body = body.get("pipeline") or {}
        version = body.get("pipeline_version") or {}
        docs, url = api.docs_from_body(version)
        pipeline = api.create_with_version(
            request, pipeline_body, docs, version.get("display_name") or version.get("name"), url
        )
        return JSONResponse(convert.pipeline_to_kfp(pipeline))

    @router.post(ROOT)
    def create_pipeline(request: Request, body: dict[str, Any]) -> Response:
        return JSONResponse(convert.pipeline_to_kfp(api.create_pipeline(request, body)))

    @router.get(ROOT)
    def list_pipelines(request: Request) -> Response:
        q = request.query_params
        items, total, token = ctx.list(
            user_of(request), PIPELINE, namespace_of(q.get("namespace")), q, KEYS
        )
        return JSONResponse(
            {
                "pipelines": [convert.pipeline_to_kfp(p) for p in items],
                "total_size": total,
                "next_page_token": token,
            }
        )

    @router.get(ROOT + "/names/{name}")
    def get_pipeline_by_name(request: Request, name: str) -> Response:
        ns = namespace_of(request.query_params.get("namespace"))
        ctx.index.sync()
        matches = ctx.index.select(PIPELINE, lambda r: r["ns"] == ns and r["display_name"] == name)
        if not matches:
            raise NotFoundError(
                f"Failed to get pipeline by name: no pipeline named {name!r} in namespace {ns!r}"
            )
        return JSONResponse(
            convert.pipeline_to_kfp(ctx.get(user_of(request), PIPELINE, matches[0]["id"]))
        )

    @router.get(ROOT + "/{pipeline_id}/versions/{version_id}:download")
    def download_version(request: Request, pipeline_id: str, version_id: str) -> Response:
        version = _version(request, pipeline_id, version_id)
        docs = [version["spec"]["pipelineSpec"]]
        if version["spec"].get("platformSpec"):
            docs.append(version["spec"]["platformSpec"])
        text = yaml.safe_dump_all(docs, sort_keys=False)
        return Response(text, media_type="application/x-yaml")

    def _version(request: Request, pipeline_id: str, version_id: str) -> Resource:
        pipeline = ctx.row(PIPELINE, pipeline_id)
        version = ctx.get(user_of(request), PIPELINE_VERSION, version_id)
        if version["spec"].get("pipelineName") != pipeline["rname"]:
            raise NotFoundError(
                f"Failed to get pipeline version {version_id!r}: it does not belong to "
                f"pipeline {pipeline_id!r}"
            )
        return version

    pipeline_updates.build(router, ctx, _version)

    @router.get(ROOT + "/{pipeline_id}")
    def get_pipeline(request: Request, pipeline_id: str) -> Response:
        return JSONResponse(
            convert.pipeline_to_kfp(ctx.get(user_of(request), PIPELINE, pipeline_id))
        )

    @router.delete(ROOT + "/{pipeline_id}")
    def delete_pipeline(request: Request, pipeline_id: str) -> Response:
        user = user_of(request)
        pipeline = ctx.get(user, PIPELINE, pipeline_id)
        name = pipeline["metadata"]["name"]
        versions = ctx.index.select(
            PIPELINE_VERSION,
            lambda r: r["pipeline"] == name and r["ns"] == pipeline["metadata"]["namespace"],
        )
        cascade = request.query_params.get("cascade", "").lower() == "true"
        if versions and not cascade:
            raise FailedPreconditionError(
                f"Failed to delete pipeline {pipeline_id!r}: it has {len(versions)} version(s); "
                "delete them first or pass cascade=true"
            )
        for row in versions:
            ctx.delete(user, PIPELINE_VERSION, ctx.get(user, PIPELINE_VERSION, row["id"]))
        ctx.delete(user, PIPELINE, pipeline)
        return JSONResponse({})

    @router.post(ROOT + "/{pipeline_id}/versions")
    def create_version(request: Request, pipeline_id: str, body: dict[str, Any]) -> Response:
        pipeline = ctx.get(user_of(request), PIPELINE, pipeline_id)
        docs, url = api.docs_from_body(body)
        display = str(body.get("display_name") or body.get("name") or "").strip()
        if not display:
            raise BadRequestError("pipeline version display_name is required")
        version = api.create_version(
            request, pipeline, display, docs, description=body.get("description") or "", url=url
        )
        return JSONResponse(api.version_json(version))

    @router.get(ROOT + "/{pipeline_id}/versions")
    def list_versions(request: Request, pipeline_id: str) -> Response:
        pipeline = ctx.row(PIPELINE, pipeline_id)
        items, total, token = ctx.list(
            user_of(request),
            PIPELINE_VERSION,
            pipeline["ns"],
            request.query_params,
            VERSION_KEYS,
            scope=lambda r: r["pipeline"] == pipeline["rname"],
        )
        return JSONResponse(
            {
                "pipeline_versions": [api.version_json(v) for v in items],
                "total_size": total,
                "next_page_token": token,
            }
        )

    @router.get(ROOT + "/{pipeline_id}/versions/{version_id}")
    def get_version(request: Request, pipeline_id: str, version_id: str) -> Response:
        return JSONResponse(api.version_json(_version(request, pipeline_id, version_id)))

    @router.delete(ROOT + "/{pipeline_id}/versions/{version_id}")
    def delete_version(request: Request, pipeline_id: str, version_id: str) -> Response:
        ctx.delete(user_of(request), PIPELINE_VERSION, _version(request, pipeline_id, version_id))
        return JSONResponse({})


__all__ = ["KfpRoute", "build"]
