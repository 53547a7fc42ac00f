"""Unit tests of the pieces the engine is built from: CEL conditions, value typing, placeholder
resolution, preamble handling, cache keys."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from flowyard.pipelines import cel, values
from flowyard.pipelines.cache import cache_key, fingerprint
from flowyard.pipelines.command import parse_requirements, plan_command, split_preamble
from flowyard.pipelines.placeholders import RuntimeContext, resolve_command
from flowyard.pipelines.resolve import apply_selector
from flowyard.pipelines.steps import retry_delay

CTX = RuntimeContext("job", "jid", "task", "tid", "/root", "2024-01-01T00:00:00Z", "s")


@pytest.mark.parametrize(
    ("expr", "params", "expected"),
    [
        ("inputs.parameter_values['x'] == 'heads'", {"x": "heads"}, True),
        ("!(inputs.parameter_values['x'] == 'heads')", {"x": "heads"}, False),
        ("int(inputs.parameter_values['n']) > 1", {"n": 2}, True),
        (
            "!(int(inputs.parameter_values['n']) > 1) && int(inputs.parameter_values['n']) < 0",
            {"n": -3},
            True,
        ),
        ("double(inputs.parameter_values['f']) >= 0.5 || false", {"f": 0.25}, False),
        ("inputs.parameter_values['b'] == true", {"b": True}, True),
        ("inputs.parameter_values['s'] != \"a b\"", {"s": "a b"}, False),
    ],
)
def test_cel_conditions(expr: str, params: dict[str, Any], expected: bool) -> None:
    assert cel.evaluate(expr, params) is expected


def test_cel_rejects_code() -> None:
    with pytest.raises(cel.CelError):
        cel.evaluate("__import__('os').system('true')", {})
    with pytest.raises(cel.CelError, match="no value"):
        cel.evaluate("inputs.parameter_values['missing'] == 1", {})


def test_values_text_forms() -> None:
    assert values.placeholder_text(3.0) == "3"
    assert values.placeholder_text(1e-7) == "0.0000001"
    assert values.placeholder_text(True) == "true"
    assert values.placeholder_text([1, {"a": "b"}]) == '[1,{"a":"b"}]'
    assert values.from_output_text("42\n", values.NUMBER_INTEGER) == 42
    assert values.from_output_text("x\n", values.STRING) == "x\n"
    assert values.from_output_text("True", values.BOOLEAN) is True
    assert values.from_output_text('{"a": 1}', values.STRUCT) == {"a": 1}
    assert values.coerce(2.0, values.NUMBER_INTEGER) == 2
    with pytest.raises(values.ParameterTypeError):
        values.coerce("2", values.NUMBER_INTEGER)


def test_selector() -> None:
    assert apply_selector('{"a": {"b": [5, 6]}}', 'parseJson(string_value)["a"]["b"][1]') == 6
    assert apply_selector({"A_a": "1"}, 'parseJson(string_value)["A_a"]') == "1"


def test_structured_placeholders() -> None:
    executor_input = {
        "inputs": {"parameterValues": {"msg": "hi", "n": 2.0}},
        "outputs": {
            "parameters": {"out": {"outputFile": "/o/out"}},
            "artifacts": {"m": {"artifacts": [{"uri": "/root/m", "metadata": {}}]}},
            "outputFile": "/o/executor_output.json",
        },
    }
    items = [
        "sh",
        '{"Concat": ["echo ", "{{$.inputs.parameters[\'msg\']}}", " > ", '
        "\"{{$.outputs.parameters['out'].output_file}}\"]}",
        '{"IfPresent": {"InputName": "opt", "Then": ["--opt", "x"], "Else": ["--no-opt"]}}',
        '{"IfPresent": {"InputName": "n", "Then": ["--n", "{{$.inputs.parameters[\'n\']}}"]}}',
        "{{$.outputs.artifacts['m'].path}}",
        "{{$.pipeline_job_name}}/{{$.pipeline_task_name}}",
        "{{$.inputs.parameters['unknown']}}",
    ]
    assert resolve_command(items, executor_input, CTX) == [
        "sh",
        "echo hi > /o/out",
        "--no-opt",
        "--n",
        "2",
        "/root/m",
        "job/task",
        "{{$.inputs.parameters['unknown']}}",
    ]
    whole = resolve_command(["{{$}}"], executor_input, CTX)[0]
    assert '"parameterValues"' in whole


PREAMBLE = (
    '\nif ! [ -x "$(command -v pip)" ]; then\n    python3 -m ensurepip\nfi\n\n'
    "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location"
    " 'kfp==2.14.6' '--no-deps' 'typing-extensions>=3.7.4,<5; python_version<\"3.9\"' &&"
    " python3 -m pip install --quiet --no-warn-script-location --index-url http://127.0.0.1:1/s"
    ' {pkgs} && "$0" "$@"\n'
)


def _lightweight(pkgs: str) -> list[str]:
    return ["sh", "-c", PREAMBLE.format(pkgs=pkgs), "sh", "-ec", "python3 -m kfp.dsl.executor_main"]


def test_preamble_skipped_when_satisfied() -> None:
    command = _lightweight("'pyyaml>=5'")
    assert split_preamble(command) is not None
    reqs, opts = parse_requirements(command[2])
    assert "pyyaml>=5" in reqs and "kfp==2.14.6" in reqs
    assert opts == ["--index-url", "http://127.0.0.1:1/s"]
    plan = plan_command(command, sys.executable)
    assert plan.skipped_preamble and plan.argv == command[3:]


def test_unsatisfied_requirements_go_through_env_cache() -> None:
    plan = plan_command(_lightweight("'surely-not-installed-pkg==1.0'"), sys.executable)
    assert plan.missing == ["surely-not-installed-pkg==1.0"]
    assert plan.argv[:3] == [sys.executable, "-m", "flowyard.pipelines.envcache"]
    assert plan.argv[-3:] == ["sh", "-ec", "python3 -m kfp.dsl.executor_main"]


def test_container_command_untouched() -> None:
    plan = plan_command(["echo", "hello"], sys.executable)
    assert plan.argv == ["echo", "hello"] and not plan.skipped_preamble


def test_cache_key_changes_with_inputs_not_uris() -> None:
    comp = {"outputDefinitions": {"parameters": {"Output": {"parameterType": "STRING"}}}}
    container = {"image": "python:3.11", "command": ["c"], "args": ["{{$}}"]}

    def ei(value: str, uri: str) -> dict[str, Any]:
        return {
            "inputs": {"parameterValues": {"x": value}},
            "outputs": {
                "artifacts": {"m": {"artifacts": [{"name": "m", "type": {}, "uri": uri}]}},
            },
        }

    a = fingerprint(cache_key(ei("1", "/r/run1/m"), comp, container))
    b = fingerprint(cache_key(ei("1", "/r/run2/m"), comp, container))
    c = fingerprint(cache_key(ei("2", "/r/run1/m"), comp, container))
    assert a == b != c
    assert fingerprint({}, "custom") == fingerprint({"x": 1}, "custom")


def test_retry_backoff() -> None:
    policy = {"backoffDuration": "2s", "backoffFactor": 3.0, "backoffMaxDuration": "10s"}
    assert [retry_delay(policy, n) for n in (1, 2, 3)] == [2.0, 6.0, 10.0]
    assert retry_delay({}, 1) == 0.0
