"""Health, version and Kubernetes-style discovery (``/api``, ``/apis``, resource lists)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from flowyard import __version__
from flowyard.api.json import JSONResponse
from flowyard.errors import NotFoundError, UnavailableError
from flowyard.resources.registry import REGISTRY

_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _resources(group: str, version: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for info in REGISTRY:
        if (info.group, info.version) != (group, version):
            continue
        out.append(
            {
                "name": info.plural,
                "singularName": info.singular,
                "kind": info.kind,
                "namespaced": info.namespaced,
                "verbs": _VERBS,
                "shortNames": list(info.short_names),
                # flowyard extension: the columns `flowyard get` prints for this kind
                "columns": [
                    {
                        "name": c.name,
                        "jsonPath": c.json_path,
                        "type": c.type,
                        "priority": c.priority,
                    }
                    for c in info.columns
                ],
            }
        )
        out.append(
            {
                "name": f"{info.plural}/status",
                "singularName": "",
                "kind": info.kind,
                "namespaced": info.namespaced,
                "verbs": ["get", "patch", "update"],
            }
        )
    return out


def build_router() -> APIRouter:
    router = APIRouter(tags=["discovery"])

    @router.get("/healthz", response_class=PlainTextResponse)
    @router.get("/livez", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @router.get("/readyz", response_class=PlainTextResponse)
    def readyz(request: Request) -> str:
        if not request.app.state.ready.is_set():
            raise UnavailableError("not ready: the controllers are still starting")
        return "ok"

    @router.get("/version")
    def version() -> Response:
        return JSONResponse({"gitVersion": f"v{__version__}", "platform": "flowyard"})

    @router.get("/api")
    def core_versions() -> Response:
        return JSONResponse({"kind": "APIVersions", "versions": ["v1"]})

    @router.get("/apis")
    def groups() -> Response:
        by_group: dict[str, list[str]] = {}
        for info in REGISTRY:
            if info.group:
                by_group.setdefault(info.group, [])
                if info.version not in by_group[info.group]:
                    by_group[info.group].append(info.version)
        items = [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
            }
            for g, vs in sorted(by_group.items())
        ]
        return JSONResponse({"kind": "APIGroupList", "apiVersion": "v1", "groups": items})

    @router.get("/api/{version}")
    def core_resources(version: str) -> Response:
        return _resource_list("", version)

    @router.get("/apis/{group}/{version}")
    def group_resources(group: str, version: str) -> Response:
        return _resource_list(group, version)

    return router


def _resource_list(group: str, version: str) -> Response:
    resources = _resources(group, version)
    if not resources:
        gv = f"{group}/{version}" if group else version
        raise NotFoundError(f'the server does not serve API version "{gv}"')
    return JSONResponse(
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }
    )
