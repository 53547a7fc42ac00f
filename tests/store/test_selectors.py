"""Label and field selector parsing and matching (flowyard.resources.selectors)."""

from __future__ import annotations

import pytest

from flowyard.errors import BadRequestError
from flowyard.resources.selectors import (
    Requirement,
    field_value,
    label_selector_from_object,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "replicas": "3", "example.com/team": "ml", "empty": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("app=web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (db,web)", True),
        ("app notin (db,web)", False),
        ("missing notin (x)", True),
        ("missing in (x)", False),
        ("example.com/team=ml", True),
        ("empty=", True),
        ("empty", True),
        ("!empty", False),
        ("replicas>2", True),
        ("replicas<3", False),
        ("app>2", False),
        ("app=web,tier=front,!missing", True),
        ("app=web,tier=back", False),
    ],
)
def test_label_matching(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


def test_label_parse_structure() -> None:
    parsed = parse_label_selector("a in (x, y),!b,c!=d,e")
    assert parsed.requirements == (
        Requirement("a", "in", ("x", "y")),
        Requirement("b", "!"),
        Requirement("c", "!=", ("d",)),
        Requirement("e", "exists"),
    )
    assert parse_label_selector(None).empty and parse_label_selector("  ").empty
    # As in Kubernetes, "()" is the set holding the empty value.
    assert parse_label_selector("a notin ()").requirements == (Requirement("a", "notin", ("",)),)


@pytest.mark.parametrize(
    ("selector", "problem"),
    [
        ("a in (x", "expected"),
        ("a in x", "expected '\\('"),
        ("a in (x y)", "expected ','"),
        (",a", "label key"),
        ("a,", "label key"),
        ("a=b c", "expected ','"),
        ("a>x", "not an integer"),
        ("-a=b", "invalid label key"),
        ("a=" + "v" * 64, "invalid label value"),
        ("a b", "unexpected"),
    ],
)
def test_label_syntax_errors_name_selector_and_problem(selector: str, problem: str) -> None:
    with pytest.raises(BadRequestError, match=problem) as err:
        parse_label_selector(selector)
    assert f'"{selector}"' in err.value.message
    assert err.value.code == 400


def test_label_selector_object() -> None:
    selector = label_selector_from_object(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector.matches(LABELS)
    assert not selector.matches({**LABELS, "canary": "1"})
    assert label_selector_from_object(None).empty
    with pytest.raises(BadRequestError, match="Gt"):
        label_selector_from_object({"matchExpressions": [{"key": "a", "operator": "Gt"}]})


OBJ = {
    "metadata": {"name": "n", "namespace": "ns"},
    "spec": {"suspend": True, "parallelism": 3, "items": [1]},
    "status": {"phase": "Running"},
    "involvedObject": {"uid": "u-1", "kind": "Job"},
}


def test_field_values() -> None:
    assert field_value(OBJ, "metadata.name") == "n"
    assert field_value(OBJ, "spec.suspend") == "true"
    assert field_value(OBJ, "spec.parallelism") == "3"
    assert field_value(OBJ, "spec.items") == ""
    assert field_value(OBJ, "status.missing.deeper") == ""


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("metadata.name=n", True),
        ("metadata.name==n", True),
        ("metadata.name!=n", False),
        ("metadata.namespace=ns,status.phase=Running", True),
        ("status.phase=Failed", False),
        ("involvedObject.uid=u-1,involvedObject.kind=Job", True),
        ("spec.suspend=true", True),
        ("status.reason=", True),
        ("", True),
    ],
)
def test_field_matching(selector: str, matches: bool) -> None:
    assert parse_field_selector(selector).matches(OBJ) is matches


def test_field_escapes() -> None:
    parsed = parse_field_selector(r"metadata.name=a\,b\=c\\d,status.phase!=x")
    assert parsed.terms[0].value == "a,b=c\\d"
    assert parsed.terms[1].operator == "!="
    assert parsed.equals("metadata.name") == "a,b=c\\d"
    assert parsed.equals("status.phase") is None


@pytest.mark.parametrize(
    ("selector", "problem"),
    [
        ("metadata.name", "no operator"),
        ("=x", "not a field path"),
        ("metadata name=x", "not a field path"),
        ("a=b,", "empty term"),
        (r"a=b\q", "bad escape"),
        ("a!x", "no operator"),
    ],
)
def test_field_syntax_errors_name_selector_and_problem(selector: str, problem: str) -> None:
    with pytest.raises(BadRequestError, match=problem) as err:
        parse_field_selector(selector)
    assert f'"{selector}"' in err.value.message
