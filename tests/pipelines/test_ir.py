"""IR loading and validation: every reference IR loads; bad IR and bad parameters are refused
with errors that name the task, component or parameter."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import dsl

from flowyard.errors import InvalidError, NotFoundError
from flowyard.pipelines import from_function, load_dict, load_file, load_yaml
from flowyard.pipelines.validate import resolve_run_parameters

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "kfp"
REFERENCE_IRS = sorted((REFERENCE / "pipelines").glob("*.yaml"))


def _ref(name: str) -> dict[str, Any]:
    if not (REFERENCE / "pipelines" / name).exists():
        pytest.skip("reference IRs not present")
    data: dict[str, Any] = yaml.safe_load((REFERENCE / "pipelines" / name).read_text())
    return data


@pytest.mark.skipif(not REFERENCE_IRS, reason="reference IRs not present")
@pytest.mark.parametrize("path", REFERENCE_IRS, ids=lambda p: p.name)
def test_every_reference_ir_loads(path: Path) -> None:
    ir = load_yaml(path)
    assert ir.name
    assert ir.root["dag"]["tasks"]


@dsl.component(base_image="python:3.11")
def echo(msg: str) -> str:
    return msg


@dsl.pipeline
def one_step(msg: str = "hi") -> str:
    return echo(msg=msg).output


def test_from_function_compiles_with_kfp() -> None:
    ir = from_function(one_step)
    assert ir.name == "one-step"
    assert "comp-echo" in ir.components


def test_load_file_py_picks_pipeline(tmp_path: Path) -> None:
    src = tmp_path / "two.py"
    src.write_text(
        "from kfp import dsl\n"
        "@dsl.component(base_image='python:3.11')\n"
        "def c() -> int:\n    return 1\n"
        "@dsl.pipeline\ndef first():\n    c()\n"
        "@dsl.pipeline\ndef second():\n    c()\n"
    )
    with pytest.raises(InvalidError, match="several pipelines"):
        load_file(src)
    assert load_file(src, pipeline="second").name == "second"
    with pytest.raises(NotFoundError, match="third"):
        load_file(src, pipeline="third")


def test_platform_spec_document_is_kept(tmp_path: Path) -> None:
    @dsl.pipeline(pipeline_config=dsl.PipelineConfig(workspace=dsl.WorkspaceConfig(size="1Gi")))
    def ws() -> None:
        echo(msg=dsl.WORKSPACE_PATH_PLACEHOLDER)

    ir = from_function(ws)
    assert ir.workspace_size == "1Gi"
    again = load_yaml(ir.to_yaml())
    assert again.workspace_size == "1Gi"


def test_newer_schema_version_is_refused() -> None:
    doc = _ref("add_numbers.yaml")
    doc["schemaVersion"] = "2.2.0"
    with pytest.raises(InvalidError, match=r"schemaVersion 2\.2\.0 is not supported"):
        load_dict(doc)


def test_cycle_is_named() -> None:
    doc = _ref("producer_consumer_param_pipeline.yaml")
    doc["root"]["dag"]["tasks"]["producer"]["dependentTasks"] = ["consumer"]
    with pytest.raises(InvalidError, match="cycle") as err:
        load_dict(doc)
    assert "consumer -> producer -> consumer" in str(err.value) or "producer -> consumer" in str(
        err.value
    )


def test_unknown_component_reference_names_the_task() -> None:
    doc = _ref("add_numbers.yaml")
    doc["root"]["dag"]["tasks"]["add-numbers"]["componentRef"]["name"] = "comp-nope"
    with pytest.raises(InvalidError, match="'add-numbers' refers to unknown component 'comp-nope'"):
        load_dict(doc)


def test_unknown_executor_label() -> None:
    doc = _ref("add_numbers.yaml")
    doc["components"]["comp-add-numbers"]["executorLabel"] = "exec-gone"
    with pytest.raises(InvalidError, match="exec-gone"):
        load_dict(doc)


def test_task_missing_required_input_is_named() -> None:
    doc = _ref("add_numbers.yaml")
    del doc["root"]["dag"]["tasks"]["add-numbers"]["inputs"]["parameters"]["b"]
    with pytest.raises(
        InvalidError, match="'add-numbers' does not set required input parameter 'b'"
    ):
        load_dict(doc)


def test_argo_workflow_is_recognised() -> None:
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "spec": {}}
    with pytest.raises(InvalidError, match="Argo Workflow"):
        load_dict(doc)


def test_not_a_pipeline() -> None:
    with pytest.raises(InvalidError, match="no 'root'"):
        load_dict({"hello": "world"})


def test_run_parameters_typed_defaulted_and_checked() -> None:
    ir = load_dict(copy.deepcopy(_ref("add_numbers.yaml")))
    assert resolve_run_parameters(ir, {"a": "3", "b": 4.0}) == {"a": 3, "b": 4}
    with pytest.raises(InvalidError, match="missing required parameter 'b'"):
        resolve_run_parameters(ir, {"a": 1})
    with pytest.raises(InvalidError, match="parameter 'a' must be int"):
        resolve_run_parameters(ir, {"a": "x", "b": 1})
    with pytest.raises(InvalidError, match="parameter 'a' must be int"):
        resolve_run_parameters(ir, {"a": 1.5, "b": 1})
    with pytest.raises(InvalidError, match="no parameter 'c'"):
        resolve_run_parameters(ir, {"a": 1, "b": 2, "c": 3})
    retry = load_yaml(REFERENCE / "pipelines" / "pipeline_with_retry.yaml")
    assert resolve_run_parameters(retry, {}) == {"a": 1.0, "b": 7.0}
