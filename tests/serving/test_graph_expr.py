"""The gjson subset of InferenceGraph conditions, and the graph admission checks."""

from __future__ import annotations

from typing import Any

import pytest

from flowyard.serving import graph_expr
from flowyard.serving.kinds import validate_graph

DOC = {"predictions": [1, 0], "source": "client", "score": 0.7, "meta": {"a.b": True}}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('[@this].#(source=="client")', True),
        ('[@this].#(source=="server")', False),
        ('[@this].#(source!="server")', True),
        ("[@this].#(score>0.5)", True),
        ("[@this].#(score<=0.5)", False),
        ("[@this].#(predictions.0==1)", True),
        ("[@this].#(predictions.1==1)", False),
        ('[@this].#(source%"cli*")', True),
        ('[@this].#(source!%"cli*")', False),
        ("[@this].#(predictions)", True),
        ("[@this].#(missing)", False),
        ("predictions.0", True),
        ("predictions.5", False),
        ("predictions.#", True),
        ("predictions.#(==0)", True),
        ("predictions.#(>5)#", False),
        ("meta.a\\.b", True),
        ("[@this].#(meta.a\\.b==true)", True),
        ("nothing", False),
    ],
)
def test_conditions(expr: str, expected: bool) -> None:
    assert graph_expr.exists(DOC, expr) is expected


def test_values() -> None:
    assert graph_expr.evaluate(DOC, "predictions.#") == 2
    assert graph_expr.evaluate({"xs": [{"k": 1}, {"k": 2}]}, "xs.#(k>=1)#") == [{"k": 1}, {"k": 2}]
    assert graph_expr.evaluate(DOC, "[@this].#(score>0.5)") == DOC


@pytest.mark.parametrize("expr", ["a.@reverse", "a.*", "[@this].#(x==unquoted)", "a.#(b==1"])
def test_unsupported_syntax_is_refused(expr: str) -> None:
    with pytest.raises(ValueError, match="condition"):
        graph_expr.check(expr)


def _graph(nodes: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"nodes": nodes}}


def test_admission_checks() -> None:
    assert (
        validate_graph(
            _graph({"root": {"routerType": "Sequence", "steps": [{"serviceName": "a"}]}}), None
        )
        == []
    )
    missing_root = validate_graph(_graph({"x": {"routerType": "Sequence", "steps": []}}), None)
    assert missing_root[0].field == "spec.nodes.root"
    causes = validate_graph(
        _graph(
            {
                "root": {
                    "routerType": "Splitter",
                    "steps": [
                        {"serviceName": "a", "weight": 30},
                        {"serviceName": "b", "serviceUrl": "http://x", "weight": 30},
                        {"nodeName": "nope", "weight": 30},
                    ],
                }
            }
        ),
        None,
    )
    messages = " | ".join(f"{c.field}: {c.message}" for c in causes)
    assert "add up to 90" in messages
    assert "spec.nodes.root.steps[1]: Invalid value: exactly one of" in messages
    assert "no node 'nope'" in messages
    cycle = validate_graph(
        _graph(
            {
                "root": {"routerType": "Sequence", "steps": [{"nodeName": "b"}]},
                "b": {"routerType": "Sequence", "steps": [{"nodeName": "root"}]},
            }
        ),
        None,
    )
    assert "cycle: root -> b -> root" in cycle[0].message
    bad = validate_graph(
        _graph(
            {"root": {"routerType": "Switch", "steps": [{"serviceName": "a", "condition": "a.*"}]}}
        ),
        None,
    )
    assert bad[0].field == "spec.nodes.root.steps[0].condition"
