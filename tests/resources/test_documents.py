"""Safe decoding of untrusted YAML and JSON (flowyard.resources.documents)."""

from __future__ import annotations

import pytest

from flowyard.errors import BadRequestError
from flowyard.resources.documents import load_json, load_yaml, load_yaml_documents


def alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_plain_documents_load() -> None:
    assert load_yaml("a: [1, 2]\nb: {c: d}\n") == {"a": [1, 2], "b": {"c": "d"}}
    assert list(load_yaml_documents("a: 1\n---\nb: 2\n")) == [{"a": 1}, {"b": 2}]
    assert load_yaml("# only a comment\n") is None
    assert load_json('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}


def test_small_aliases_are_fine_and_bombs_are_refused() -> None:
    assert load_yaml("base: &b {x: 1}\nother: *b\n") == {"base": {"x": 1}, "other": {"x": 1}}
    load_yaml(alias_bomb(4))
    with pytest.raises(BadRequestError, match="aliases"):
        load_yaml(alias_bomb(9))


@pytest.mark.parametrize(
    ("text", "loader"),
    [("a: 1\nb: 2\na: 3\n", load_yaml), ('{"a": 1, "a": 2}', load_json)],
)
def test_duplicate_keys_are_refused(text: str, loader: object) -> None:
    with pytest.raises(BadRequestError, match='duplicate field "a"'):
        loader(text)  # type: ignore[operator]


@pytest.mark.parametrize("text", ["[" * 100_000, "{a: " * 50_000, "[" * 1500 + "]" * 1500])
def test_deep_nesting_is_an_error_not_a_crash(text: str) -> None:
    with pytest.raises(BadRequestError):
        load_yaml(text)
    with pytest.raises(BadRequestError):
        load_json(text.replace("{a: ", '{"a": '))


def test_syntax_errors_name_the_document() -> None:
    with pytest.raises(BadRequestError, match=r"job\.yaml is not valid YAML"):
        load_yaml("a: [1\n", "job.yaml")
    with pytest.raises(BadRequestError, match="is not valid JSON"):
        load_json("{'single': 'quotes'}")
    with pytest.raises(BadRequestError, match="not UTF-8"):
        load_json(b"\xff\xfe{")
