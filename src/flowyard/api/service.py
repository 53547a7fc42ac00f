"""Resource operations behind the REST routes: authorization, admission, store calls.

Kept separate from the HTTP layer so compatibility APIs (KFP, MLflow, ...) can reuse the same
checks. Every method is synchronous (run it in a thread from async code) and raises only
flowyard errors.
"""

from __future__ import annotations

import copy
from typing import Any

from flowyard.api.auth import Authorizer, RequestAttributes, User
from flowyard.errors import BadRequestError, ConflictError, InvalidError
from flowyard.resources.admission import admit
from flowyard.resources.meta import DEFAULT_NAMESPACE, Resource
from flowyard.resources.patch import merge_patch
from flowyard.resources.registry import KindInfo
from flowyard.store.base import BaseStore, Propagation

_PROPAGATIONS = ("Background", "Foreground", "Orphan")


class ResourceService:
    def __init__(self, store: BaseStore, authorizer: Authorizer) -> None:
        self.store = store
        self.authorizer = authorizer

    def check(
        self, user: User, verb: str, info: KindInfo, namespace: str | None, name: str = ""
    ) -> None:
        self.authorizer.authorize(
            user,
            RequestAttributes(
                verb=verb,
                group=info.group,
                resource=info.plural,
                namespace=namespace or "",
                name=name,
            ),
        )

    def list(
        self,
        user: User,
        info: KindInfo,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        self.check(user, "list", info, namespace)
        page = self.store.list(
            info,
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_token=continue_token,
        )
        md: dict[str, Any] = {"resourceVersion": page.resource_version}
        if page.continue_token:
            md["continue"] = page.continue_token
        if page.remaining is not None:
            md["remainingItemCount"] = page.remaining
        return {
            "apiVersion": info.api_version,
            "kind": f"{info.kind}List",
            "metadata": md,
            "items": page.items,
        }

    def get(self, user: User, info: KindInfo, namespace: str | None, name: str) -> Resource:
        self.check(user, "get", info, namespace, name)
        return self.store.get(info, namespace, name)

    def create(self, user: User, info: KindInfo, namespace: str | None, body: Resource) -> Resource:
        self._match_kind(info, body)
        self._match_namespace(info, namespace, body)
        self.check(user, "create", info, namespace, str(body.get("metadata", {}).get("name", "")))
        obj = copy.deepcopy(body)
        obj.pop("status", None)
        self._admit(info, obj, None)
        return self.store.create(obj)

    def update(
        self, user: User, info: KindInfo, namespace: str | None, name: str, body: Resource
    ) -> Resource:
        self._match_kind(info, body)
        self._match_namespace(info, namespace, body)
        self._match_name(name, body)
        self.check(user, "update", info, namespace, name)
        old = self.store.get(info, namespace, name)
        obj = copy.deepcopy(body)
        self._admit(info, obj, old)
        return self.store.update(obj)

    def _admit(self, info: KindInfo, obj: Resource, old: Resource | None) -> None:
        """Admission, then the kind's checks that need to read other objects."""
        admit(obj, old)
        causes = [c for check in info.store_validators for c in check(obj, old, self.store)]
        if causes:
            listed = "; ".join(f"{c.field}: {c.message}" for c in causes)
            name = obj.get("metadata", {}).get("name", "")
            raise InvalidError(f'{info.kind} "{name}" is invalid: {listed}', causes=causes)

    def patch(
        self,
        user: User,
        info: KindInfo,
        namespace: str | None,
        name: str,
        patch: Resource,
        *,
        status: bool = False,
    ) -> Resource:
        """Apply a JSON merge patch to the latest stored object, retrying on write conflicts
        (as the Kubernetes API server does). A ``metadata.resourceVersion`` in the patch is a
        precondition and is not retried."""
        for key in ("metadata", "spec", "status"):
            if patch.get(key) is not None and not isinstance(patch[key], dict):
                raise InvalidError(f"{key}: Invalid value: must be an object in a merge patch")
        precondition = (patch.get("metadata") or {}).get("resourceVersion")
        for _ in range(10):
            current = self.get(user, info, namespace, name)
            merged = merge_patch(current, patch)
            try:
                if status:
                    return self.update_status(user, info, namespace, name, merged)
                return self.update(user, info, namespace, name, merged)
            except ConflictError:
                if precondition:
                    raise
        raise ConflictError(f'{info.plural} "{name}" kept changing; retry the patch')

    def update_status(
        self, user: User, info: KindInfo, namespace: str | None, name: str, body: Resource
    ) -> Resource:
        self._match_kind(info, body)
        self._match_name(name, body)
        self.check(user, "update", info, namespace, name)
        if not isinstance(body.get("status", {}), dict):
            raise InvalidError("status: Invalid value: must be an object")
        obj = copy.deepcopy(body)
        obj.setdefault("metadata", {})["namespace"] = namespace or ""
        return self.store.update_status(obj)

    def delete(
        self, user: User, info: KindInfo, namespace: str | None, name: str, propagation: str | None
    ) -> Resource:
        self.check(user, "delete", info, namespace, name)
        policy = propagation or "Background"
        if policy not in _PROPAGATIONS:
            raise BadRequestError(
                f'propagationPolicy "{policy}" is not one of {", ".join(_PROPAGATIONS)}'
            )
        mode: Propagation = policy  # type: ignore[assignment]
        return self.store.delete(info, namespace, name, propagation=mode)

    @staticmethod
    def _match_kind(info: KindInfo, body: Resource) -> None:
        body.setdefault("apiVersion", info.api_version)
        body.setdefault("kind", info.kind)
        if (body.get("apiVersion"), body.get("kind")) != (info.api_version, info.kind):
            raise BadRequestError(
                f"the object is {body.get('apiVersion')}/{body.get('kind')} but it was sent to "
                f"the {info.api_version} {info.plural} endpoint"
            )

    @staticmethod
    def _match_namespace(info: KindInfo, namespace: str | None, body: Resource) -> None:
        md = body.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise InvalidError("metadata: Invalid value: must be an object")
        if not info.namespaced:
            md.pop("namespace", None)
            return
        wanted = namespace or DEFAULT_NAMESPACE
        if md.get("namespace") in (None, ""):
            md["namespace"] = wanted
        elif md["namespace"] != wanted:
            raise BadRequestError(
                f'the namespace of the provided object ("{md["namespace"]}") does not match the '
                f'namespace sent on the request ("{wanted}")'
            )

    @staticmethod
    def _match_name(name: str, body: Resource) -> None:
        md = body.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise InvalidError("metadata: Invalid value: must be an object")
        if md.get("name") in (None, ""):
            md["name"] = name
        elif md["name"] != name:
            raise BadRequestError(
                f'the name of the object ("{md["name"]}") does not match the '
                f'name in the URL ("{name}")'
            )
