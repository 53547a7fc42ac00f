"""Merge patch (RFC 7386) and apply's three-way patch."""

from __future__ import annotations

from flowyard.resources.patch import merge_patch, three_way_patch


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "list": [3]}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "list": [3]}
    assert target["c"] == {"d": "e", "f": "g"}, "the target is not modified"
    assert merge_patch({"a": 1}, "scalar") == "scalar"


def test_three_way_patch_deletes_only_what_the_user_removed() -> None:
    last = {"spec": {"parallelism": 2, "suspend": True}, "metadata": {"labels": {"a": "1"}}}
    desired = {"spec": {"parallelism": 3}, "metadata": {"labels": {"a": "1"}}}
    patch = three_way_patch(last, desired)
    assert patch == {
        "spec": {"suspend": None, "parallelism": 3},
        "metadata": {"labels": {"a": "1"}},
    }
    live = {
        "spec": {"parallelism": 2, "suspend": True, "backoffLimit": 6},
        "metadata": {"labels": {"a": "1"}, "uid": "u"},
        "status": {"active": 1},
    }
    merged = merge_patch(live, patch)
    assert merged["spec"] == {"parallelism": 3, "backoffLimit": 6}, "server defaults stay"
    assert merged["status"] == {"active": 1} and merged["metadata"]["uid"] == "u"
