"""``flowyard.Client``: the Python client of the flowyard API.

It finds the server through ``FLOWYARD_URL`` and authenticates with ``FLOWYARD_TOKEN`` or the
token in ``FLOWYARD_HOME/credentials``. Every error the server reports is raised as the same
:mod:`flowyard.errors` class; a server that cannot be reached raises ServerNotRunningError with
the command that starts it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from flowyard import config
from flowyard.client.discovery import registry_from_discovery
from flowyard.client.pipelines import PipelinesMixin
from flowyard.errors import (
    ConflictError,
    FieldCause,
    FlowyardError,
    InvalidError,
    NotFoundError,
    ServerNotRunningError,
    error_from_status,
)
from flowyard.resources.conditions import get_condition
from flowyard.resources.meta import DEFAULT_NAMESPACE, Resource
from flowyard.resources.patch import LAST_APPLIED, merge_patch, three_way_patch
from flowyard.resources.registry import KindInfo, KindRegistry

KindRef = str | KindInfo


class Client(PipelinesMixin):
    def __init__(
        self, url: str | None = None, token: str | None = None, timeout: float = 30.0
    ) -> None:
        self.url = (url or config.server_url()).rstrip("/")
        self.token = token or config.read_token()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._registry: KindRegistry | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ServerNotRunningError(
                f"cannot reach the flowyard server at {self.url}: start it with `flowyard up` "
                "(or point FLOWYARD_URL at a running server)"
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return orjson.loads(self.request(method, path, **kwargs).content)

    # -- kinds -------------------------------------------------------------------------------
    @property
    def registry(self) -> KindRegistry:
        """The kinds the server serves (fetched once from discovery)."""
        if self._registry is None:
            docs = [self._json("GET", "/api/v1")]
            for group in self._json("GET", "/apis").get("groups", []):
                for version in group["versions"]:
                    docs.append(self._json("GET", f"/apis/{version['groupVersion']}"))
            self._registry = registry_from_discovery(docs)
        return self._registry

    def kind(self, ref: KindRef) -> KindInfo:
        return ref if isinstance(ref, KindInfo) else self.registry.resolve(ref)

    def kind_of(self, obj: Resource) -> KindInfo:
        """The kind of a manifest; InvalidError when apiVersion or kind is missing."""
        for key, example in (("apiVersion", "batch/v1"), ("kind", "Job")):
            if not isinstance(obj.get(key), str) or not obj.get(key):
                raise InvalidError(
                    f'{key}: Required value: set {key} (e.g. "{example}")',
                    causes=[FieldCause(key, "Required value", "FieldValueRequired")],
                )
        return self.registry.get(obj.get("apiVersion"), obj.get("kind"))

    @staticmethod
    def _ns(info: KindInfo, namespace: str | None) -> str | None:
        return (namespace or DEFAULT_NAMESPACE) if info.namespaced else None

    # -- resources ---------------------------------------------------------------------------
    def get(self, kind: KindRef, name: str, namespace: str | None = None) -> Resource:
        info = self.kind(kind)
        result: Resource = self._json("GET", info.object_path(self._ns(info, namespace), name))
        return result

    def list(
        self,
        kind: KindRef,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> list[Resource]:
        info = self.kind(kind)
        path = info.collection_path(None if all_namespaces else self._ns(info, namespace))
        items: list[Resource] = []
        token: str | None = None
        while True:
            params = {
                k: v
                for k, v in {
                    "labelSelector": label_selector,
                    "fieldSelector": field_selector,
                    "limit": page_size,
                    "continue": token,
                }.items()
                if v
            }
            page = self._json("GET", path, params=params)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def create(self, obj: Resource) -> Resource:
        info = self.kind_of(obj)
        ns = self._ns(info, (obj.get("metadata") or {}).get("namespace"))
        result: Resource = self._json(
            "POST",
            info.collection_path(ns),
            content=orjson.dumps(obj),
            headers={"Content-Type": "application/json"},
        )
        return result

    def update(self, obj: Resource) -> Resource:
        info = self.kind_of(obj)
        md = obj.get("metadata") or {}
        path = info.object_path(self._ns(info, md.get("namespace")), md.get("name", ""))
        result: Resource = self._json(
            "PUT", path, content=orjson.dumps(obj), headers={"Content-Type": "application/json"}
        )
        return result

    def patch(
        self, kind: KindRef, name: str, patch: dict[str, Any], namespace: str | None = None
    ) -> Resource:
        info = self.kind(kind)
        result: Resource = self._json(
            "PATCH",
            info.object_path(self._ns(info, namespace), name),
            content=orjson.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        return result

    def apply(self, obj: Resource) -> tuple[Resource, str]:
        """Create ``obj`` or bring the stored one in line with it, as ``kubectl apply`` does
        (a three-way merge against the manifest kept in the last-applied annotation). An object
        with only ``generateName`` is always created.
        Returns the object and ``"created"``, ``"configured"`` or ``"unchanged"``."""
        info = self.kind_of(obj)
        desired = copy.deepcopy(obj)
        md = desired.setdefault("metadata", {})
        if not md.get("name"):
            if md.get("generateName"):
                return self.create(desired), "created"  # a new object each time (Argo workflows)
            raise InvalidError(
                "metadata.name: Required value: name or generateName is required",
                causes=[FieldCause("metadata.name", "Required value", "FieldValueRequired")],
            )
        applied = copy.deepcopy(obj)
        applied.get("metadata", {}).get("annotations", {}).pop(LAST_APPLIED, None)
        md.setdefault("annotations", {})[LAST_APPLIED] = orjson.dumps(
            applied, option=orjson.OPT_SORT_KEYS
        ).decode()
        for _ in range(5):
            try:
                current = self.get(info, md.get("name", ""), md.get("namespace"))
            except NotFoundError:
                return self.create(desired), "created"
            last_text = ((current.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
            if last_text == md["annotations"][LAST_APPLIED]:
                return current, "unchanged"
            last = orjson.loads(last_text) if last_text else {}
            patch = three_way_patch(last, {k: v for k, v in desired.items() if k != "status"})
            patch["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                return self.update(merge_patch(current, patch)), "configured"
            except ConflictError:
                continue
        raise ConflictError(f"{info.plural}/{md.get('name')} kept changing while applying; retry")

    def delete(
        self,
        kind: KindRef,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
    ) -> Resource:
        info = self.kind(kind)
        result: Resource = self._json(
            "DELETE",
            info.object_path(self._ns(info, namespace), name),
            params={"propagationPolicy": propagation},
        )
        return result

    def watch(
        self,
        kind: KindRef,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        timeout: float = 300,
    ) -> Iterator[dict[str, Any]]:
        """Yield ``{"type", "object"}`` events until ``timeout`` seconds pass."""
        info = self.kind(kind)
        params = {
            k: v
            for k, v in {
                "watch": "true",
                "resourceVersion": resource_version,
                "labelSelector": label_selector,
                "timeoutSeconds": int(timeout),
            }.items()
            if v
        }
        try:
            with self._http.stream(
                "GET",
                info.collection_path(self._ns(info, namespace)),
                params=params,
                timeout=httpx.Timeout(10, read=timeout + 10),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield orjson.loads(line)
        except httpx.ConnectError:
            raise ServerNotRunningError(f"cannot reach the flowyard server at {self.url}") from None

    def logs(
        self,
        kind: KindRef,
        name: str,
        namespace: str | None = None,
        *,
        follow: bool = False,
        container: str | None = None,
        tail_lines: int | None = None,
    ) -> Iterator[bytes]:
        info = self.kind(kind)
        params = {
            k: v
            for k, v in {
                "follow": "true" if follow else None,
                "container": container,
                "tailLines": tail_lines,
            }.items()
            if v is not None
        }
        path = info.object_path(self._ns(info, namespace), name) + "/log"
        with self._http.stream(
            "GET", path, params=params, timeout=httpx.Timeout(10, read=None)
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            yield from response.iter_bytes()

    def wait_for_condition(
        self,
        kind: KindRef,
        name: str,
        condition: str,
        *,
        namespace: str | None = None,
        timeout: float = 60.0,
        status: str = "True",
    ) -> Resource:
        """Block until the object's condition ``condition`` has ``status``; TimeoutError after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get(kind, name, namespace)
            cond = get_condition(obj, condition)
            if cond and str(cond.get("status")).lower() == status.lower():
                return obj
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"timed out waiting for the condition {condition}={status} "
                    f"on {self.kind(kind).plural}/{name}"
                )
            self._wait_for_change(kind, name, namespace, obj, min(left, 30))

    def _wait_for_change(
        self, kind: KindRef, name: str, namespace: str | None, obj: Resource, timeout: float
    ) -> None:
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        for event in self.watch(kind, namespace, resource_version=rv, timeout=max(int(timeout), 1)):
            if (event.get("object") or {}).get("metadata", {}).get("name") == name:
                return


def _error(response: httpx.Response) -> FlowyardError:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return error_from_status(body, response.status_code)
    text = response.text[:300] if response.content else response.reason_phrase
    return error_from_status(
        {"message": f"HTTP {response.status_code}: {text}"}, response.status_code
    )
