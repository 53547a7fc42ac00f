"""The list index: sorted orders kept current, keyset pages stable under inserts and updates,
the page-body cache checked against resourceVersion."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from flowyard.api.auth import AdminAuthorizer, User
from flowyard.api.service import ResourceService
from flowyard.kfp_api import register_kinds, run_routes
from flowyard.kfp_api.context import KfpContext
from flowyard.kfp_api.orders import Order, sort_key
from flowyard.pipelines.kinds import RUN
from flowyard.store import SqlStore

ADMIN = User("admin", ("system:masters",), is_admin=True)
SPEC = {"pipelineInfo": {"name": "p"}, "root": {"dag": {"tasks": {}}}, "schemaVersion": "2.1.0"}


def test_order_matches_a_fresh_sort_through_changes() -> None:
    rng = random.Random(7)
    rows: dict[str, dict[str, Any]] = {}
    order = Order("v", rows)
    for step in range(2000):
        ident = f"id{rng.randrange(300):03d}"
        old = rows.get(ident)
        if old is not None and step % 5 == 0:
            del rows[ident]
            order.replace(old, None)
            continue
        new = {"id": ident, "v": rng.choice([None, *range(20)])}
        rows[ident] = new
        order.replace(old, new)
    expected = [r["id"] for r in sorted(rows.values(), key=lambda r: sort_key("v", r))]
    assert list(order.ids_from(None, False)) == expected
    assert list(order.ids_from(None, True)) == expected[::-1]
    mark = sort_key("v", rows[expected[40]])
    assert list(order.ids_from(mark, False)) == expected[41:]
    assert list(order.ids_from(mark, True)) == expected[:40][::-1]


def _run(store: SqlStore, i: int) -> dict[str, Any]:
    return store.create(
        {
            "apiVersion": "pipelines.kubeflow.org/v2beta1",
            "kind": "Run",
            "metadata": {
                "name": f"run-{i:03d}",
                "namespace": "default",
                "annotations": {"pipelines.kubeflow.org/created-at": f"{1000 + i}.0"},
            },
            "spec": {"displayName": f"run {i}", "pipelineSpec": SPEC, "experimentName": "e"},
        }
    )


def _page(ctx: KfpContext, **params: Any) -> tuple[list[dict[str, Any]], int, str]:
    return ctx.list(ADMIN, RUN, "default", params, run_routes.KEYS)


def test_pages_stable_under_inserts_updates_and_deletes(tmp_path: Path) -> None:
    register_kinds()
    with SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        ctx = KfpContext(ResourceService(store, AdminAuthorizer()))
        runs = [_run(store, i) for i in range(30)]
        seen: list[str] = []
        items, total, token = _page(ctx, page_size=7, sort_by="created_at desc")
        assert total == 30
        while True:
            seen += [r["metadata"]["name"] for r in items]
            if not token:
                break
            # Between pages: new runs (newer than every page), a state change, a delete of
            # an already-served run.
            _run(store, 100 + len(seen))
            store.update_status({**runs[len(seen) % 30], "status": {"state": "FAILED"}})
            items, _, token = _page(ctx, page_size=7, page_token=token)
        assert seen == [f"run-{i:03d}" for i in range(29, -1, -1)]

        failed = json.dumps(
            {"predicates": [{"key": "state", "op": "EQUALS", "string_value": "FAILED"}]}
        )
        items, total, _ = _page(ctx, page_size=50, filter=failed)
        assert total == len(items) > 0
        assert all(r["status"]["state"] == "FAILED" for r in items)  # fresh bodies, not cached


def test_archived_state_and_page_cache_follow_writes(tmp_path: Path) -> None:
    register_kinds()
    with SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        ctx = KfpContext(ResourceService(store, AdminAuthorizer()))
        runs = [_run(store, i) for i in range(5)]
        _page(ctx, page_size=10)  # fills the body cache
        archived = json.dumps(
            {"predicates": [{"key": "storage_state", "op": 1, "string_value": "ARCHIVED"}]}
        )
        label = {"pipelines.kubeflow.org/storage-state": "ARCHIVED"}
        md = {**runs[2]["metadata"], "labels": label}
        store.update({**runs[2], "metadata": md})
        items, total, _ = _page(ctx, page_size=10, filter=archived)
        assert total == 1 and items[0]["metadata"]["labels"] == label
        items, _, _ = _page(ctx, page_size=10, sort_by="name desc")
        assert [r["metadata"]["name"] for r in items] == [f"run-{i:03d}" for i in (4, 3, 2, 1, 0)]
        assert items[2]["metadata"]["labels"] == label
        store.delete(RUN, "default", "run-004")
        items, total, _ = _page(ctx, page_size=10, sort_by="name desc")
        assert total == 4 and items[0]["metadata"]["name"] == "run-003"
