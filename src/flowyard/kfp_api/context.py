"""What every KFP route needs: the user, the namespace, id lookups and authorized store calls.

Single-user KFP semantics: an empty ``namespace`` means ``default``; ids are global (a get by id
finds the object in whichever namespace it lives, then checks the caller may read it there).
"""

from __future__ import annotations

import builtins
import copy
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from starlette.requests import Request

from flowyard.api.auth import User
from flowyard.api.service import ResourceService
from flowyard.errors import NotFoundError
from flowyard.kfp_api import convert
from flowyard.kfp_api.filters import compile_filter, parse_filter
from flowyard.kfp_api.index import Index, Row
from flowyard.kfp_api.names import stamp
from flowyard.kfp_api.paging import after_key, encode_token, request_from
from flowyard.pipelines.experiments import EXPERIMENT
from flowyard.pipelines.kinds import API_VERSION, PIPELINE, PIPELINE_VERSION, RUN
from flowyard.pipelines.recurring import RECURRING_RUN
from flowyard.resources.meta import DEFAULT_NAMESPACE, Resource
from flowyard.resources.registry import KindInfo

log = logging.getLogger(__name__)
TIME_FIELDS = frozenset({"created_at", "finished_at"})
NOUNS = {
    PIPELINE.key: "pipeline",
    PIPELINE_VERSION.key: "pipeline version",
    RUN.key: "run",
    EXPERIMENT.key: "experiment",
    RECURRING_RUN.key: "recurring run",
}


def user_of(request: Request) -> User:
    user = request.scope.get("state", {}).get("user")
    assert isinstance(user, User), "the auth middleware sets the user"
    return user


def namespace_of(value: str | None) -> str:
    return value or DEFAULT_NAMESPACE


class KfpContext:
    def __init__(self, service: ResourceService) -> None:
        self.service = service
        self.store = service.store
        self.index = Index(
            service.store,
            [
                (PIPELINE, convert.summarize_common),
                (PIPELINE_VERSION, convert.summarize_version),
                (RUN, convert.summarize_run),
                (EXPERIMENT, convert.summarize_common),
                (RECURRING_RUN, convert.summarize_recurring),
            ],
        )

    def warm_up(self) -> threading.Thread:
        """Build the index in the background, so the first list after a restart does not pay
        for it (a request meanwhile waits for the build; a failure here is retried by it)."""

        def build() -> None:
            try:
                self.index.sync()
            except Exception:  # the next request syncs again and reports the error
                log.debug("KFP index warm-up failed", exc_info=True)

        thread = threading.Thread(target=build, name="kfp-index-warm-up", daemon=True)
        thread.start()
        return thread

    # -- ids ------------------------------------------------------------------------------

    def ids(self, info: KindInfo, namespace: str, name: str) -> str | None:
        row = self.index.by_name(info, namespace, name)
        return str(row["id"]) if row else None

    def row(self, info: KindInfo, kfp_id: str) -> Row:
        """The index row of the object with KFP id ``kfp_id``; NotFoundError (gRPC NotFound)."""
        self.index.sync()
        row = self.index.get(info, kfp_id)
        if row is None:
            noun = NOUNS[info.key]
            raise NotFoundError(
                f"Failed to get {noun} {kfp_id!r}: {noun} not found (no {noun} has this id)"
            )
        return row

    def get(self, user: User, info: KindInfo, kfp_id: str) -> Resource:
        """The object with KFP id ``kfp_id``. One being deleted (waiting for its finalizer,
        say a Run's cleanup) is already gone for KFP: NotFoundError, as KFP deletes at once."""
        row = self.row(info, kfp_id)
        obj = self.service.get(user, info, row["ns"], row["rname"])
        if obj["metadata"].get("deletionTimestamp"):
            noun = NOUNS[info.key]
            raise NotFoundError(f"Failed to get {noun} {kfp_id!r}: {noun} was deleted")
        return obj

    # -- writes -----------------------------------------------------------------------------

    def create(
        self, user: User, info: KindInfo, namespace: str, metadata: dict[str, Any], spec: Any
    ) -> Resource:
        md = copy.deepcopy(metadata)
        md["namespace"] = namespace
        stamp(md)
        body = {"apiVersion": API_VERSION, "kind": info.kind, "metadata": md, "spec": spec}
        created = self.service.create(user, info, namespace, body)
        self.index.sync()
        return created

    def patch(self, user: User, info: KindInfo, obj: Resource, patch: Resource) -> Resource:
        md = obj["metadata"]
        out = self.service.patch(user, info, md["namespace"], md["name"], patch)
        self.index.sync()
        return out

    def delete(self, user: User, info: KindInfo, obj: Resource) -> None:
        md = obj["metadata"]
        self.service.delete(user, info, md["namespace"], md["name"], "Background")
        self.index.sync()

    # -- lists --------------------------------------------------------------------------------

    def list(
        self,
        user: User,
        info: KindInfo,
        namespace: str | None,
        params: Mapping[str, Any],
        keys: Mapping[str, str],
        scope: Callable[[Row], bool] | None = None,
        translate: Callable[[str, Any], Any] | None = None,
    ) -> tuple[list[Resource], int, str]:
        """One KFP list page: (objects, total_size, next_page_token). ``params`` holds the
        request's page_token, page_size, sort_by and filter; ``scope`` narrows rows further
        (a pipeline's versions, an experiment's runs)."""
        self.service.check(user, "list", info, namespace)
        req = request_from(
            params.get("page_token"),
            params.get("page_size"),
            params.get("sort_by"),
            params.get("filter"),
            {**keys, "id": "id"},
            "created_at",
        )
        predicates = parse_filter(req.filter, keys)
        test = compile_filter(predicates, TIME_FIELDS, translate)
        self.index.sync()

        def wanted(row: Row) -> bool:
            if namespace is not None and row["ns"] != namespace:
                return False
            return (scope is None or scope(row)) and test(row)

        page, more = self.index.page(
            info, req.sort_field, req.desc, after_key(req), wanted, req.page_size
        )
        if scope is None and not predicates:
            total = self.index.count_in(info, namespace)
        else:
            total = self.index.count(info, wanted)  # KFP counts matches too (SQL COUNT)
        token = encode_token(req, page[-1]) if more and page else ""
        return self._bodies(info, page), total, token

    def _bodies(self, info: KindInfo, rows: Iterable[Row]) -> builtins.list[Resource]:
        """The stored objects of a page's rows, from the index's cache where it is current."""
        objects = []
        for row in rows:
            obj = self.index.body(row)
            if obj is None:
                try:
                    obj = self.store.get(info, row["ns"], row["rname"])
                except NotFoundError:
                    continue  # deleted since the index was read
                self.index.remember(obj)
            objects.append(obj)
        return objects
