"""Pipeline runs from Python: ``Client().create_run_from_pipeline_func(...)`` and friends.

These mirror ``kfp.Client``'s methods of the same names, but create
``pipelines.kubeflow.org/v2beta1 Run`` resources (or ``argoproj.io/v1alpha1 Workflow`` ones for a
KFP v1 / Argo package). Pipeline functions and ``.py`` files are compiled here, with the ``kfp``
SDK, so the server receives plain IR.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from flowyard.errors import BadRequestError, InvalidError, NotFoundError
from flowyard.resources.meta import Resource

if TYPE_CHECKING:
    from flowyard.client.client import Client

RUN_API_VERSION = "pipelines.kubeflow.org/v2beta1"
WORKFLOW_API_VERSION = "argoproj.io/v1alpha1"
FINAL_STATES = frozenset({"SUCCEEDED", "SKIPPED", "FAILED", "CANCELED"})
WORKFLOW_FINAL = frozenset({"Succeeded", "Failed", "Error"})


@dataclass
class RunResult:
    """What ``create_run_*`` returns (``kfp.Client``'s ``RunPipelineResult``, resource-shaped)."""

    client: Client
    resource: Resource

    @property
    def run_name(self) -> str:
        return str(self.resource["metadata"]["name"])

    @property
    def run_id(self) -> str:
        return str(self.resource["metadata"]["uid"])

    @property
    def namespace(self) -> str:
        return str(self.resource["metadata"].get("namespace") or "default")

    @property
    def kind(self) -> str:
        return str(self.resource["kind"])

    def wait_for_run_completion(self, timeout: float = 3600) -> Resource:
        if self.kind == "Workflow":
            return wait_for_workflow(self.client, self.run_name, timeout, self.namespace)
        return self.client.wait_for_run_completion(self.run_name, timeout, self.namespace)


# -- compiling ----------------------------------------------------------------------------------
def compile_function(func: Any, pipeline_name: str | None = None) -> list[dict[str, Any]]:
    """Compile a ``@dsl.pipeline`` function with kfp; the IR documents (spec, platform spec)."""
    from kfp import compiler

    with tempfile.TemporaryDirectory(prefix="flowyard-compile-") as tmp:
        out = Path(tmp) / "pipeline.yaml"
        try:
            compiler.Compiler().compile(func, str(out), pipeline_name=pipeline_name)
        except Exception as exc:  # kfp raises many types; one clear error instead
            name = getattr(func, "name", None) or getattr(func, "__name__", func)
            raise InvalidError(f"kfp could not compile {name}: {exc}") from exc
        return [d for d in yaml.safe_load_all(out.read_text()) if d]


def pipelines_in_file(path: Path) -> dict[str, Any]:
    """The ``@dsl.pipeline`` functions a Python file defines, by attribute name."""
    from kfp.dsl.graph_component import GraphComponent

    module_name = f"_flowyard_pipeline_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise BadRequestError(f"{path}: cannot import as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise InvalidError(f"{path}: importing it failed: {exc}") from exc
    return {k: v for k, v in vars(module).items() if isinstance(v, GraphComponent)}


def load_package(path: str | Path, pipeline: str | None = None) -> list[dict[str, Any]]:
    """The documents of a pipeline file: IR (``.yaml``/``.json``, or a ``.py`` file compiled
    here; ``pipeline`` picks one of several functions) or an Argo Workflow."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    if path.suffix == ".py":
        found = pipelines_in_file(path)
        if not found:
            raise InvalidError(f"{path}: no @dsl.pipeline function found")
        if pipeline is None and len(found) > 1:
            raise InvalidError(
                f"{path} defines several pipelines ({', '.join(sorted(found))});"
                " choose one with --pipeline NAME"
            )
        for attr, comp in found.items():
            if pipeline in (None, attr, getattr(comp, "name", None)):
                return compile_function(comp)
        raise NotFoundError(
            f"{path}: no pipeline named {pipeline!r}; it defines {', '.join(sorted(found))}"
        )
    text = path.read_text()
    try:
        docs = json.loads(text) if path.suffix == ".json" else list(yaml.safe_load_all(text))
    except (yaml.YAMLError, ValueError) as exc:
        raise BadRequestError(f"{path}: not valid YAML/JSON: {exc}") from exc
    docs = docs if isinstance(docs, list) else [docs]
    return [d for d in docs if isinstance(d, dict) and d]


def is_workflow(docs: list[dict[str, Any]]) -> bool:
    return bool(docs) and docs[0].get("kind") == "Workflow"


# -- parameters ---------------------------------------------------------------------------------
def typed_parameters(spec: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Command-line strings typed as the pipeline declares (other values pass unchanged; the
    server validates and reports by name)."""
    definitions = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    out: dict[str, Any] = {}
    for name, value in given.items():
        kind = (definitions.get(name) or {}).get("parameterType")
        out[name] = _parse(value, kind) if isinstance(value, str) else value
    return out


def _parse(text: str, kind: str | None) -> Any:
    try:
        if kind == "NUMBER_INTEGER":
            return int(text)
        if kind == "NUMBER_DOUBLE":
            return float(text)
        if kind == "BOOLEAN" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind in ("LIST", "STRUCT"):
            return json.loads(text)
    except ValueError:
        return text  # the server names the parameter and the expected type
    return text


# -- building resources -------------------------------------------------------------------------
def run_resource(
    docs: list[dict[str, Any]],
    arguments: dict[str, Any] | None = None,
    *,
    run_name: str | None = None,
    namespace: str | None = None,
    pipeline_root: str | None = None,
    enable_caching: bool | None = None,
    experiment_name: str | None = None,
) -> Resource:
    """A Run (IR documents) or Workflow (Argo document) resource ready to create."""
    if is_workflow(docs):
        return workflow_resource(docs[0], arguments, run_name=run_name, namespace=namespace)
    spec_doc = next((d for d in docs if "root" in d), docs[0] if docs else {})
    platform = next((d for d in docs if "platforms" in d and "root" not in d), None)
    pipeline = str((spec_doc.get("pipelineInfo") or {}).get("name") or "pipeline")
    runtime: dict[str, Any] = {"parameters": typed_parameters(spec_doc, arguments or {})}
    if pipeline_root:
        runtime["pipelineRoot"] = pipeline_root
    spec: dict[str, Any] = {
        "displayName": run_name or pipeline,
        "pipelineSpec": spec_doc,
        "runtimeConfig": runtime,
    }
    if platform:
        spec["platformSpec"] = platform
    if enable_caching is not None:
        spec["enableCaching"] = enable_caching
    if experiment_name:
        spec["experimentName"] = experiment_name
    metadata: dict[str, Any] = {"namespace": namespace or "default"}
    if run_name:
        metadata["name"] = run_name
    else:
        metadata["generateName"] = _dns(pipeline)[:50] + "-"
    return {"apiVersion": RUN_API_VERSION, "kind": "Run", "metadata": metadata, "spec": spec}


def workflow_resource(
    doc: dict[str, Any],
    arguments: dict[str, Any] | None = None,
    *,
    run_name: str | None = None,
    namespace: str | None = None,
) -> Resource:
    """An Argo Workflow with ``arguments`` merged into ``spec.arguments.parameters``."""
    obj = json.loads(json.dumps(doc))
    md = obj.setdefault("metadata", {})
    if run_name:
        md["name"] = run_name
        md.pop("generateName", None)
    elif not md.get("name") and not md.get("generateName"):
        md["generateName"] = "workflow-"
    if namespace:
        md["namespace"] = namespace
    params = obj.setdefault("spec", {}).setdefault("arguments", {}).setdefault("parameters", [])
    for key, value in (arguments or {}).items():
        text = value if isinstance(value, str) else json.dumps(value)
        for p in params:
            if p.get("name") == key:
                p["value"] = text
                break
        else:
            params.append({"name": key, "value": text})
    return dict(obj)


def _dns(text: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return "-".join(filter(None, out.split("-"))) or "run"


# -- waiting ------------------------------------------------------------------------------------
def wait_for_workflow(client: Client, name: str, timeout: float, namespace: str | None) -> Resource:
    deadline = time.monotonic() + timeout
    while True:
        obj = client.get("workflows", name, namespace)
        if (obj.get("status") or {}).get("phase") in WORKFLOW_FINAL:
            return obj
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for workflow {name}")
        time.sleep(0.2)


class PipelinesMixin:
    """Pipeline methods of :class:`~flowyard.client.Client`."""

    def create_run_from_pipeline_func(
        self,
        pipeline_func: Any,
        arguments: dict[str, Any] | None = None,
        run_name: str | None = None,
        experiment_name: str | None = None,
        namespace: str | None = None,
        pipeline_root: str | None = None,
        enable_caching: bool | None = None,
    ) -> RunResult:
        """Compile ``pipeline_func`` with kfp and start a Run of it."""
        docs = compile_function(pipeline_func)
        return self._submit(
            docs, arguments, run_name, experiment_name, namespace, pipeline_root, enable_caching
        )

    def create_run_from_pipeline_package(
        self,
        pipeline_file: str | Path,
        arguments: dict[str, Any] | None = None,
        run_name: str | None = None,
        experiment_name: str | None = None,
        namespace: str | None = None,
        pipeline_root: str | None = None,
        enable_caching: bool | None = None,
        pipeline: str | None = None,
    ) -> RunResult:
        """Start a Run of a compiled IR file (or a ``.py`` file, or an Argo Workflow YAML)."""
        docs = load_package(pipeline_file, pipeline)
        return self._submit(
            docs, arguments, run_name, experiment_name, namespace, pipeline_root, enable_caching
        )

    def _submit(
        self,
        docs: list[dict[str, Any]],
        arguments: dict[str, Any] | None,
        run_name: str | None,
        experiment_name: str | None,
        namespace: str | None,
        pipeline_root: str | None,
        enable_caching: bool | None,
    ) -> RunResult:
        obj = run_resource(
            docs,
            arguments,
            run_name=run_name,
            namespace=namespace,
            pipeline_root=pipeline_root,
            enable_caching=enable_caching,
            experiment_name=experiment_name,
        )
        client: Client = self  # type: ignore[assignment]
        return RunResult(client, client.create(obj))

    def wait_for_run_completion(
        self, run_name: str, timeout: float = 3600, namespace: str | None = None
    ) -> Resource:
        """The Run once it reaches a final state; TimeoutError after ``timeout`` seconds."""
        client: Client = self  # type: ignore[assignment]
        deadline = time.monotonic() + timeout
        while True:
            run = client.get("runs.pipelines.kubeflow.org", run_name, namespace)
            if (run.get("status") or {}).get("state") in FINAL_STATES:
                return run
            left = deadline - time.monotonic()
            if left <= 0:
                state = (run.get("status") or {}).get("state") or "PENDING"
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for run {run_name} (state {state})"
                )
            client._wait_for_change(
                "runs.pipelines.kubeflow.org", run_name, namespace, run, min(left, 5)
            )

    def terminate_run(self, run_name: str, namespace: str | None = None) -> Resource:
        """Terminate a Run (sets ``spec.terminate``; its steps are killed)."""
        client: Client = self  # type: ignore[assignment]
        return client.patch(
            "runs.pipelines.kubeflow.org", run_name, {"spec": {"terminate": True}}, namespace
        )

    def retry_run(self, run_name: str, namespace: str | None = None) -> Resource:
        """Retry a FAILED or CANCELED Run (increments ``spec.retry``)."""
        client: Client = self  # type: ignore[assignment]
        run = client.get("runs.pipelines.kubeflow.org", run_name, namespace)
        retry = int(run["spec"].get("retry") or 0) + 1
        return client.patch(
            "runs.pipelines.kubeflow.org",
            run_name,
            {"spec": {"retry": retry, "terminate": False}},
            namespace,
        )
