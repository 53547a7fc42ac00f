"""The printer's JSONPath filters: quoted strings and unquoted JSON literals."""

from __future__ import annotations

from flowyard.client.jsonpath import find

TRAFFIC = {
    "traffic": [
        {"revisionName": "r1", "percent": 90, "latestRevision": False, "tag": "prev"},
        {"revisionName": "r2", "percent": 10, "latestRevision": True, "tag": "true"},
        {"revisionName": "r3", "percent": 1.5, "latestRevision": None},
    ]
}


def test_boolean_filter_matches_the_boolean_not_the_string() -> None:
    assert find(TRAFFIC, ".traffic[?(@.latestRevision==true)].percent") == [10]
    assert find(TRAFFIC, ".traffic[?(@.latestRevision==false)].percent") == [90]
    assert find(TRAFFIC, '.traffic[?(@.tag=="true")].revisionName') == ["r2"]
    assert find(TRAFFIC, ".traffic[?(@.latestRevision=='true')].percent") == []


def test_number_and_null_filters() -> None:
    assert find(TRAFFIC, ".traffic[?(@.percent==90)].revisionName") == ["r1"]
    assert find(TRAFFIC, ".traffic[?(@.percent==1.5)].revisionName") == ["r3"]
    assert find(TRAFFIC, ".traffic[?(@.latestRevision==null)].revisionName") == ["r3"]
    # 1 is not true, and a missing key is not null
    assert find({"a": [{"x": 1}, {"y": 2}]}, ".a[?(@.x==true)]") == []
    assert find({"a": [{"x": 1}, {"y": 2}]}, ".a[?(@.x==null)]") == []


def test_quoted_strings_and_unknown_literals() -> None:
    assert find(TRAFFIC, ".traffic[?(@.tag=='prev')].revisionName") == ["r1"]
    assert find(TRAFFIC, '.traffic[?(@.revisionName=="r3")].percent') == [1.5]
    assert (
        find(TRAFFIC, ".traffic[?(@.tag==prev)].revisionName") == []
    )  # bare words are not strings
