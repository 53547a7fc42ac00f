"""Kubernetes-shaped REST routes for every registered kind (DESIGN §5).

``/api/v1/...`` serves the core group, ``/apis/{group}/{version}/...`` the others; collections
live under ``namespaces/{namespace}/{plural}`` (or ``/{plural}`` for cluster-scoped kinds and for
listing across all namespaces). Items have ``/status`` and ``/log`` subresources.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from flowyard.api import logs as log_routes
from flowyard.api import watch as watch_routes
from flowyard.api.bodies import read_object
from flowyard.api.json import JSONResponse
from flowyard.api.service import ResourceService
from flowyard.errors import BadRequestError
from flowyard.resources.registry import REGISTRY, KindInfo

_PREFIXES = {"core": "/api/{version}", "group": "/apis/{group}/{version}"}
_OBJECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "object"}},
        },
    }
}


def _param(name: str, where: str = "path", type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": {"type": type_}}


_LIST_QUERY = [
    _param("labelSelector", "query"),
    _param("fieldSelector", "query"),
    _param("limit", "query", "integer"),
    _param("continue", "query"),
    _param("watch", "query", "boolean"),
    _param("resourceVersion", "query"),
    _param("timeoutSeconds", "query", "integer"),
]


def _kind(request: Request) -> KindInfo:
    p = request.path_params
    return REGISTRY.by_path(p.get("group", ""), p["version"], p["plural"])


def _namespace(request: Request, info: KindInfo) -> str | None:
    ns = request.path_params.get("namespace")
    if ns is not None and not info.namespaced:
        raise BadRequestError(
            f"{info.plural} are cluster-scoped; drop namespaces/{ns} from the path"
        )
    return ns


def _int_query(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestError(f'query parameter {name}="{raw}" must be an integer') from None
    if value < 0:
        raise BadRequestError(f"query parameter {name} must not be negative")
    return value


def build_router(service: ResourceService) -> APIRouter:
    router = APIRouter()

    async def list_or_watch(request: Request) -> Response:
        info = _kind(request)
        ns = _namespace(request, info)
        q = request.query_params
        user = request.state.user
        if q.get("watch") in ("true", "1", "True"):
            service.check(user, "watch", info, ns)
            return await watch_routes.stream(request, service.store, info, ns)
        result = await run_in_threadpool(
            service.list,
            user,
            info,
            ns,
            label_selector=q.get("labelSelector"),
            field_selector=q.get("fieldSelector"),
            limit=_int_query(request, "limit"),
            continue_token=q.get("continue"),
        )
        return JSONResponse(result)

    async def create(request: Request) -> Response:
        info = _kind(request)
        ns = _namespace(request, info)
        body = await read_object(request)
        obj = await run_in_threadpool(service.create, request.state.user, info, ns, body)
        return JSONResponse(obj, status_code=201)

    async def on_item(
        request: Request, method: Callable[..., Any], *args: Any, **kw: Any
    ) -> Response:
        """Call ``method(user, kind, namespace, name, *args)`` off the event loop."""
        info = _kind(request)
        obj = await run_in_threadpool(
            method,
            request.state.user,
            info,
            _namespace(request, info),
            request.path_params["name"],
            *args,
            **kw,
        )
        return JSONResponse(obj)

    async def get(request: Request) -> Response:
        return await on_item(request, service.get)

    async def replace(request: Request) -> Response:
        return await on_item(request, service.update, await read_object(request))

    async def patch(request: Request) -> Response:
        return await on_item(request, service.patch, await read_object(request))

    async def delete(request: Request) -> Response:
        return await on_item(request, service.delete, request.query_params.get("propagationPolicy"))

    async def replace_status(request: Request) -> Response:
        return await on_item(request, service.update_status, await read_object(request))

    async def patch_status(request: Request) -> Response:
        body = await read_object(request)
        if set(body) - {"status", "metadata", "apiVersion", "kind"}:
            raise BadRequestError("a status patch may only change status")
        return await on_item(request, service.patch, body, status=True)

    async def read_log(request: Request) -> Response:
        info = _kind(request)
        ns, name = _namespace(request, info), request.path_params["name"]
        await run_in_threadpool(service.get, request.state.user, info, ns, name)
        return await log_routes.respond(request, service, info, ns or "", name)

    log_query = [
        _param("follow", "query", "boolean"),
        _param("container", "query"),
        _param("tailLines", "query", "integer"),
    ]
    delete_query = [_param("propagationPolicy", "query")]
    # (path suffix, method, handler, is item path, extra query params, has body)
    table = [
        ("", "GET", list_or_watch, False, _LIST_QUERY, False),
        ("", "POST", create, False, [], True),
        ("/{name}", "GET", get, True, [], False),
        ("/{name}", "PUT", replace, True, [], True),
        ("/{name}", "PATCH", patch, True, [], True),
        ("/{name}", "DELETE", delete, True, delete_query, False),
        ("/{name}/status", "GET", get, True, [], False),
        ("/{name}/status", "PUT", replace_status, True, [], True),
        ("/{name}/status", "PATCH", patch_status, True, [], True),
        ("/{name}/log", "GET", read_log, True, log_query, False),
    ]
    for scope, prefix in _PREFIXES.items():
        base = [_param("group")] if scope == "group" else []
        base.append(_param("version"))
        for ns_part, ns_params in (("/namespaces/{namespace}", [_param("namespace")]), ("", [])):
            collection = f"{prefix}{ns_part}/{{plural}}"
            params = [*base, *ns_params, _param("plural")]
            for suffix, method, handler, is_item, query, has_body in table:
                extra: dict[str, Any] = {
                    "parameters": [*params, *([_param("name")] if is_item else []), *query]
                }
                if has_body:
                    extra.update(_OBJECT_BODY)
                router.add_api_route(
                    collection + suffix,
                    handler,
                    methods=[method],
                    tags=[f"resources ({scope})"],
                    openapi_extra=extra,
                    status_code=201 if handler is create else 200,
                )
    return router
