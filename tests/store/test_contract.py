"""The store contract (flowyard.store.base): CRUD, optimistic concurrency, status separation,
lists, selectors, pagination, finalizers and cascading deletion. Runs on SQLite and PostgreSQL.

Watch and concurrency live in test_contract_watch.py and test_contract_concurrency.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from flowyard.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    InvalidError,
    NotFoundError,
)
from flowyard.resources.kinds import EVENT, JOB, NAMESPACE
from flowyard.resources.meta import Resource
from flowyard.store.sql import SqlStore
from tests.store.objects import event, job, namespace


def names(items: list[Resource]) -> list[str]:
    return [item["metadata"]["name"] for item in items]


def test_create_fills_system_metadata_and_get_returns_it(store: SqlStore) -> None:
    original = job("train", labels={"app": "x"})
    created = store.create(original)
    md = created["metadata"]
    assert md["namespace"] == "default"
    assert len(md["uid"]) == 36
    assert md["generation"] == 1
    assert md["resourceVersion"] == str(store.latest_resource_version())
    assert md["creationTimestamp"].endswith("Z")
    assert "uid" not in original["metadata"], "create must not change the caller's dict"
    assert store.get(JOB, "default", "train") == created


def test_returned_objects_are_private_copies(store: SqlStore) -> None:
    created = store.create(job("a"))
    created["spec"]["parallelism"] = 99
    created["metadata"]["labels"] = {"changed": "yes"}
    fetched = store.get(JOB, "default", "a")
    assert "parallelism" not in fetched["spec"]
    assert "labels" not in fetched["metadata"]
    fetched["spec"]["parallelism"] = 5
    assert "parallelism" not in store.list(JOB).items[0]["spec"]


def test_create_ignores_client_system_metadata(store: SqlStore) -> None:
    obj = job("a")
    obj["metadata"].update(
        uid="client-uid",
        resourceVersion="77",
        generation=9,
        deletionTimestamp="2020-01-01T00:00:00Z",
    )
    created = store.create(obj)
    md = created["metadata"]
    assert md["uid"] != "client-uid"
    assert md["generation"] == 1
    assert "deletionTimestamp" not in md
    assert md["resourceVersion"] == "1"


def test_generate_name(store: SqlStore) -> None:
    first = store.create(job(generate_name="train-"))
    second = store.create(job(generate_name="train-"))
    for created in (first, second):
        name = created["metadata"]["name"]
        assert name.startswith("train-") and len(name) == len("train-") + 5
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert (
        store.get(JOB, None, second["metadata"]["name"])["metadata"]["uid"]
        == (second["metadata"]["uid"])
    )


def test_missing_name_is_invalid(store: SqlStore) -> None:
    with pytest.raises(InvalidError) as err:
        store.create(job())
    assert err.value.causes[0].field == "metadata.name"


def test_already_exists(store: SqlStore) -> None:
    store.create(job("a"))
    with pytest.raises(AlreadyExistsError, match=r'jobs\.batch "a" already exists'):
        store.create(job("a"))
    store.create(job("a", "other"))  # same name, other namespace: fine
    store.create(event("a", store.get(JOB, "default", "a")))  # same name, other kind: fine


def test_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match=r'jobs\.batch "nope" not found') as err:
        store.get(JOB, "default", "nope")
    assert err.value.details == {"name": "nope", "group": "batch", "kind": "jobs"}
    with pytest.raises(NotFoundError):
        store.update(job("nope"))
    with pytest.raises(NotFoundError):
        store.delete(JOB, "default", "nope")


def test_unknown_kind_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="no matches for kind"):
        store.create({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


def test_update_conflicts_on_stale_resource_version(store: SqlStore) -> None:
    created = store.create(job("a"))
    fresh = dict(created, spec={**created["spec"], "parallelism": 2})
    updated = store.update(fresh)
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    stale = dict(created, spec={**created["spec"], "parallelism": 3})
    with pytest.raises(ConflictError, match="the object has been modified"):
        store.update(stale)
    with pytest.raises(ConflictError):
        store.update_status(dict(created, status={"active": 1}))
    assert store.get(JOB, "default", "a")["spec"]["parallelism"] == 2


def test_unconditional_update(store: SqlStore) -> None:
    store.create(job("a"))
    store.update_status({**job("a"), "status": {"active": 1}})
    blind = job("a", labels={"v": "2"})
    assert "resourceVersion" not in blind["metadata"]
    updated = store.update(blind)
    assert updated["metadata"]["labels"] == {"v": "2"}
    blind["metadata"]["resourceVersion"] = ""
    store.update(blind)


def test_update_keeps_system_metadata_and_rejects_other_uid(store: SqlStore) -> None:
    created = store.create(job("a"))
    changed = job("a")
    changed["metadata"].update(
        creationTimestamp="1999-01-01T00:00:00Z", generation=42, deletionTimestamp="x"
    )
    updated = store.update(changed)
    for key in ("uid", "creationTimestamp", "generation"):
        assert updated["metadata"][key] == created["metadata"][key]
    assert "deletionTimestamp" not in updated["metadata"]
    other = job("a")
    other["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ConflictError, match="UID"):
        store.update(other)


def test_generation_grows_only_when_spec_changes(store: SqlStore) -> None:
    created = store.create(job("a"))
    relabeled = store.update(dict(created, metadata={**created["metadata"], "labels": {"k": "v"}}))
    assert relabeled["metadata"]["generation"] == 1
    with_status = store.update_status(dict(relabeled, status={"active": 1}))
    assert with_status["metadata"]["generation"] == 1
    respec = dict(with_status, spec={**with_status["spec"], "parallelism": 4})
    assert store.update(respec)["metadata"]["generation"] == 2
    same = store.get(JOB, "default", "a")
    assert store.update(same)["metadata"]["generation"] == 2


def test_generation_tracks_top_level_content_of_kinds_without_spec(store: SqlStore) -> None:
    owner = store.create(job("a"))
    ev = store.create(event("ev", owner))
    ev["message"] = "changed"
    assert store.update(ev)["metadata"]["generation"] == 2


def test_unchanged_writes_are_no_ops(store: SqlStore) -> None:
    created = store.create(job("a"))
    with_status = store.update_status(dict(created, status={"active": 1}))
    rv = store.latest_resource_version()
    assert store.update(store.get(JOB, "default", "a")) == with_status
    unconditional = store.get(JOB, "default", "a")
    del unconditional["metadata"]["resourceVersion"]
    assert store.update(unconditional) == with_status
    assert store.update_status(dict(with_status, status={"active": 1})) == with_status
    assert store.latest_resource_version() == rv
    assert store.events_since(rv) == []


def test_status_is_separate_from_spec(store: SqlStore) -> None:
    created = store.create(job("a"))
    status = store.update_status(
        dict(
            created,
            spec={**created["spec"], "parallelism": 7},
            metadata={**created["metadata"], "labels": {"ignored": "yes"}},
            status={"active": 1},
        )
    )
    assert status["status"] == {"active": 1}
    assert "parallelism" not in status["spec"], "update_status must not write spec"
    assert "labels" not in status["metadata"], "update_status must not write metadata"
    spec = store.update(
        dict(status, status={"active": 99}, spec={**status["spec"], "parallelism": 2})
    )
    assert spec["status"] == {"active": 1}, "update must not write status"
    assert spec["spec"]["parallelism"] == 2
    assert store.get(JOB, "default", "a")["status"] == {"active": 1}


def test_resource_version_is_global_and_increasing(store: SqlStore) -> None:
    seen = [int(store.create(job(f"j{i}"))["metadata"]["resourceVersion"]) for i in range(3)]
    seen.append(int(store.create(namespace("team"))["metadata"]["resourceVersion"]))
    status = store.update_status({**job("j0"), "status": {"active": 1}})
    seen.append(int(status["metadata"]["resourceVersion"]))
    seen.append(int(store.delete(JOB, "default", "j1")["metadata"]["resourceVersion"]))
    assert seen == list(range(1, 7))
    assert store.latest_resource_version() == 6


def test_cluster_scoped_kind(store: SqlStore) -> None:
    created = store.create(namespace("team-a", namespace="ignored"))
    assert "namespace" not in created["metadata"]
    assert store.get(NAMESPACE, None, "team-a")["metadata"]["uid"] == created["metadata"]["uid"]
    assert store.get(NAMESPACE, "anything", "team-a") == store.get(NAMESPACE, None, "team-a")
    store.create(namespace("team-b"))
    assert names(store.list(NAMESPACE).items) == ["team-a", "team-b"]
    assert names(store.list(NAMESPACE, "default").items) == ["team-a", "team-b"]
    updated = store.update(namespace("team-a", namespace="x", labels={"a": "b"}))
    assert "namespace" not in updated["metadata"]
    store.delete(NAMESPACE, None, "team-a")
    assert names(store.list(NAMESPACE).items) == ["team-b"]


def test_list_orders_by_namespace_then_name(store: SqlStore) -> None:
    for ns, name in [("b", "x"), ("a", "z"), ("a", "a-b"), ("a", "ab"), ("a", "a.b"), ("a", "a0")]:
        store.create(job(name, ns))
    items = store.list(JOB).items
    keys = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items]
    assert keys == sorted(keys)
    assert names(store.list(JOB, "a").items) == sorted(["z", "a-b", "ab", "a.b", "a0"])
    assert store.list(JOB, "empty").items == []
    assert store.list(JOB).resource_version == str(store.latest_resource_version())


LABELLED = {
    "web-1": {"app": "web", "tier": "front", "env": "prod"},
    "web-2": {"app": "web", "tier": "front", "env": "dev"},
    "db-1": {"app": "db", "tier": "back", "env": "prod"},
    "batch-1": {"app": "batch"},
    "plain": {},
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["web-1", "web-2"]),
        ("app==web", ["web-1", "web-2"]),
        ("app!=web", ["batch-1", "db-1", "plain"]),
        ("app in (web, db)", ["db-1", "web-1", "web-2"]),
        ("env notin (prod)", ["batch-1", "plain", "web-2"]),
        ("tier", ["db-1", "web-1", "web-2"]),
        ("!tier", ["batch-1", "plain"]),
        ("app=web,env=prod", ["web-1"]),
        ("app in (web),!env", []),
        (" app = web , tier in ( front ) ", ["web-1", "web-2"]),
        ("", ["batch-1", "db-1", "plain", "web-1", "web-2"]),
    ],
)
def test_label_selectors(store: SqlStore, selector: str, expected: list[str]) -> None:
    for name, labels in LABELLED.items():
        store.create(job(name, labels=labels))
    assert names(store.list(JOB, label_selector=selector).items) == expected


def test_field_selectors(store: SqlStore) -> None:
    owner_a = store.create(job("a"))
    owner_b = store.create(job("b", "other"))
    store.create(event("ev-a", owner_a))
    store.create(event("ev-b", owner_b, reason="Failed"))
    store.update_status({**job("a"), "status": {"phase": "Running"}})
    assert names(store.list(JOB, field_selector="metadata.name=a").items) == ["a"]
    assert names(store.list(JOB, field_selector="metadata.namespace==other").items) == ["b"]
    assert names(store.list(JOB, field_selector="metadata.namespace!=other").items) == ["a"]
    assert names(store.list(JOB, field_selector="status.phase=Running").items) == ["a"]
    assert names(store.list(JOB, field_selector="status.phase=").items) == ["b"]
    uid = owner_b["metadata"]["uid"]
    found = store.list(EVENT, field_selector=f"involvedObject.uid={uid}").items
    assert names(found) == ["ev-b"]
    by_kind = "involvedObject.kind=Job,involvedObject.name=a,reason!=Failed"
    assert names(store.list(EVENT, field_selector=by_kind).items) == ["ev-a"]
    both = store.list(JOB, label_selector="!missing", field_selector="metadata.name!=a").items
    assert names(both) == ["b"]


@pytest.mark.parametrize(
    ("labels", "fields", "problem"),
    [
        ("app in (web", None, "expected"),
        ("app=web,", None, "label key"),
        ("app=w b", None, "expected ','"),
        ("Bad Key=x", None, "unexpected"),
        ("app=-bad-", None, "invalid label value"),
        (None, "metadata.name", "no operator"),
        (None, "metadata..name=x", "not a field path"),
        (None, "a=b,,c=d", "empty term"),
    ],
)
def test_bad_selectors_are_bad_requests(
    store: SqlStore, labels: str | None, fields: str | None, problem: str
) -> None:
    with pytest.raises(BadRequestError, match=problem) as err:
        store.list(JOB, label_selector=labels, field_selector=fields)
    assert (labels or fields or "") in err.value.message


def test_pagination(store: SqlStore) -> None:
    for i in range(25):
        store.create(job(f"j{i:02d}"))
    first = store.list(JOB, limit=10)
    assert names(first.items) == [f"j{i:02d}" for i in range(10)]
    assert first.remaining == 15 and first.continue_token
    second = store.list(JOB, limit=10, continue_token=first.continue_token)
    assert names(second.items) == [f"j{i:02d}" for i in range(10, 20)]
    third = store.list(JOB, limit=10, continue_token=second.continue_token)
    assert names(third.items) == [f"j{i:02d}" for i in range(20, 25)]
    assert third.continue_token is None and third.remaining is None
    exact = store.list(JOB, limit=25)
    assert len(exact.items) == 25 and exact.continue_token is None
    assert len(store.list(JOB, limit=0).items) == 25


def test_pagination_with_selector_fills_every_page(store: SqlStore) -> None:
    for i in range(60):
        store.create(job(f"j{i:02d}", labels={"even": str(i % 2 == 0).lower()}))
    token, pages = None, []
    while True:
        page = store.list(JOB, label_selector="even=true", limit=7, continue_token=token)
        pages.append(names(page.items))
        token = page.continue_token
        if token is None:
            break
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    assert [name for page in pages for name in page] == [f"j{i:02d}" for i in range(0, 60, 2)]


def test_bad_continue_token(store: SqlStore) -> None:
    with pytest.raises(BadRequestError, match="continue token"):
        store.list(JOB, limit=1, continue_token="not-a-token")
    with pytest.raises(BadRequestError, match="limit"):
        store.list(JOB, limit=-1)


def test_pagination_is_stable_under_concurrent_inserts(store: SqlStore) -> None:
    existing = [f"n{i:03d}" for i in range(0, 120, 2)]
    for name in existing:
        store.create(job(name))
    stop = threading.Event()
    errors: list[BaseException] = []

    def insert() -> None:
        try:
            for i in range(1, 120, 2):
                if stop.is_set():
                    return
                store.create(job(f"n{i:03d}"))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    writer = threading.Thread(target=insert)
    writer.start()
    seen: list[str] = []
    token = None
    for _ in range(200):
        page = store.list(JOB, limit=7, continue_token=token)
        seen.extend(names(page.items))
        token = page.continue_token
        if token is None:
            break
    stop.set()
    writer.join(timeout=60)
    assert not writer.is_alive() and not errors
    assert token is None
    assert seen == sorted(seen) and len(seen) == len(set(seen)), "no repeats, in order"
    assert set(existing) <= set(seen), "every object that existed at the start is listed"


def test_delete_removes_and_returns_the_object(store: SqlStore) -> None:
    created = store.create(job("a"))
    deleted = store.delete(JOB, "default", "a")
    assert deleted["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(deleted["metadata"]["resourceVersion"]) == store.latest_resource_version()
    with pytest.raises(NotFoundError):
        store.get(JOB, "default", "a")
    store.create(job("a"))  # the name is free again


def test_delete_uid_precondition_and_bad_propagation(store: SqlStore) -> None:
    store.create(job("a"))
    with pytest.raises(ConflictError, match="Precondition failed"):
        store.delete(JOB, "default", "a", uid="00000000-0000-0000-0000-000000000000")
    with pytest.raises(BadRequestError, match="propagationPolicy"):
        store.delete(JOB, "default", "a", propagation="Sideways")  # type: ignore[arg-type]
    uid = store.get(JOB, "default", "a")["metadata"]["uid"]
    store.delete(JOB, "default", "a", uid=uid)


def test_finalizers_hold_deletion_until_cleared(store: SqlStore) -> None:
    store.create(job("a", finalizers=["example.com/cleanup"]))
    marked = store.delete(JOB, "default", "a")
    md = marked["metadata"]
    assert md["deletionTimestamp"].endswith("Z") and md["deletionGracePeriodSeconds"] == 0
    assert (
        store.get(JOB, "default", "a")["metadata"]["deletionTimestamp"] == md["deletionTimestamp"]
    )
    again = store.delete(JOB, "default", "a")
    assert again["metadata"]["deletionTimestamp"] == md["deletionTimestamp"]
    with pytest.raises(InvalidError, match="no new finalizers"):
        store.update(dict(marked, metadata={**md, "finalizers": ["a/b", "example.com/cleanup"]}))
    status = store.update_status(dict(marked, status={"active": 0}))
    cleared = store.update(dict(status, metadata={**status["metadata"], "finalizers": []}))
    assert cleared["metadata"]["deletionTimestamp"] == md["deletionTimestamp"]
    with pytest.raises(NotFoundError):
        store.get(JOB, "default", "a")
    last = store.events_since(int(marked["metadata"]["resourceVersion"]))
    assert [e.type for e in last] == ["MODIFIED", "DELETED"]


def _family(store: SqlStore) -> tuple[Resource, Resource, Resource]:
    """owner -> child -> grandchild, plus an Event about the owner that it owns."""
    owner = store.create(job("owner"))
    child = store.create(job("child", owners=[owner]))
    grandchild = store.create(job("grandchild", owners=[child]))
    ev = event("owner-ev", owner)
    ev["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "owner", "uid": owner["metadata"]["uid"]}
    ]
    store.create(ev)
    return owner, child, grandchild


def test_cascade_background_deletes_dependents_recursively(store: SqlStore) -> None:
    owner, _, _ = _family(store)
    keeper = store.create(job("keeper"))
    shared = store.create(job("shared", owners=[owner, keeper]))
    guarded = store.create(job("guarded", owners=[owner], finalizers=["x.io/f"]))
    store.create(job("bystander"))
    rv = store.latest_resource_version()
    store.delete(JOB, "default", "owner")
    assert names(store.list(JOB).items) == ["bystander", "guarded", "keeper", "shared"]
    assert store.list(EVENT).items == []
    kept = store.get(JOB, "default", "shared")["metadata"]["ownerReferences"]
    assert [r["uid"] for r in kept] == [keeper["metadata"]["uid"]]
    assert store.get(JOB, "default", "guarded")["metadata"]["deletionTimestamp"]
    log = [(e.type, e.object["metadata"]["name"]) for e in store.events_since(rv)]
    assert log[0] == ("DELETED", "owner")
    assert sorted(log[1:]) == sorted(
        [
            ("DELETED", "child"),
            ("DELETED", "grandchild"),
            ("DELETED", "owner-ev"),
            ("MODIFIED", "shared"),
            ("MODIFIED", "guarded"),
        ]
    )
    # Clearing the guard's finalizer finishes its deletion.
    current = store.get(JOB, "default", "guarded")
    store.update(dict(current, metadata={**current["metadata"], "finalizers": []}))
    assert names(store.list(JOB).items) == ["bystander", "keeper", "shared"]
    assert guarded["metadata"]["uid"] not in {i["metadata"]["uid"] for i in store.list(JOB).items}
    assert store.get(JOB, "default", "shared")["metadata"]["uid"] == shared["metadata"]["uid"]


def test_cascade_foreground_deletes_dependents(store: SqlStore) -> None:
    _family(store)
    store.delete(JOB, "default", "owner", propagation="Foreground")
    assert store.list(JOB).items == [] and store.list(EVENT).items == []


def test_cascade_orphan_strips_owner_references(store: SqlStore) -> None:
    _, child, _ = _family(store)
    store.delete(JOB, "default", "owner", propagation="Orphan")
    assert names(store.list(JOB).items) == ["child", "grandchild"]
    assert "ownerReferences" not in store.get(JOB, "default", "child")["metadata"]
    grandchild = store.get(JOB, "default", "grandchild")
    assert grandchild["metadata"]["ownerReferences"][0]["uid"] == child["metadata"]["uid"]
    assert "ownerReferences" not in store.list(EVENT).items[0]["metadata"]


def test_cascade_after_finalized_owner_goes(store: SqlStore) -> None:
    owner = store.create(job("owner", finalizers=["x.io/f"]))
    store.create(job("child", owners=[owner]))
    marked = store.delete(JOB, "default", "owner")
    assert names(store.list(JOB).items) == ["child", "owner"], "dependents wait for the owner"
    store.update(dict(marked, metadata={**marked["metadata"], "finalizers": []}))
    assert store.list(JOB).items == []


def test_orphan_with_finalizers_orphans_at_once(store: SqlStore) -> None:
    owner = store.create(job("owner", finalizers=["x.io/f"]))
    store.create(job("child", owners=[owner]))
    store.delete(JOB, "default", "owner", propagation="Orphan")
    assert "ownerReferences" not in store.get(JOB, "default", "child")["metadata"]


def test_reopened_store_sees_prior_data(
    store: SqlStore, make_store: Callable[..., SqlStore]
) -> None:
    created = store.create(job("a"))
    store.create(namespace("team"))
    store.close()
    reopened = make_store()
    assert reopened.get(JOB, "default", "a") == created
    assert reopened.latest_resource_version() == 2
    assert [e.type for e in reopened.events_since(0)] == ["ADDED", "ADDED"]
    assert reopened.create(job("b"))["metadata"]["resourceVersion"] == "3"
