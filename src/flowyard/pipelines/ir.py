"""Loading KFP v2 pipeline IR (``PipelineSpec`` YAML, schemaVersion 2.1.0).

Entry points:

* :func:`load_yaml` — a compiled pipeline file or text: the ``PipelineSpec`` document, optionally
  followed by a ``PlatformSpec`` document (``platforms: {kubernetes: ...}``), as ``kfp`` writes it.
* :func:`load_dict` — the same, already parsed.
* :func:`from_function` — a ``@dsl.pipeline`` function, compiled with kfp's own compiler.
* :func:`load_file` — a ``.yaml``/``.yml``/``.json`` file, or a ``.py`` file holding one or more
  ``@dsl.pipeline`` functions (``pipeline=NAME`` picks one when there are several).

Every loader returns a :class:`PipelineIR` and validates its structure (see ``validate.py``);
errors are :class:`~flowyard.errors.InvalidError` naming the task, component or parameter.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flowyard.errors import BadRequestError, InvalidError, NotFoundError

SUPPORTED_SCHEMA_VERSION = (2, 1, 0)
ROOT = "__root__"


@dataclass
class PipelineIR:
    """A loaded pipeline: the ``PipelineSpec`` dict and the optional ``PlatformSpec`` dict."""

    spec: dict[str, Any]
    platform: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def name(self) -> str:
        return str(self.spec.get("pipelineInfo", {}).get("name") or "pipeline")

    @property
    def components(self) -> dict[str, Any]:
        comps: dict[str, Any] = self.spec.get("components") or {}
        return comps

    @property
    def executors(self) -> dict[str, Any]:
        execs: dict[str, Any] = (self.spec.get("deploymentSpec") or {}).get("executors") or {}
        return execs

    @property
    def root(self) -> dict[str, Any]:
        root: dict[str, Any] = self.spec.get("root") or {}
        return root

    @property
    def default_pipeline_root(self) -> str | None:
        value = self.spec.get("defaultPipelineRoot")
        return str(value) if value else None

    def component(self, name: str) -> dict[str, Any]:
        """The component spec ``name``; ``__root__`` is the pipeline's root component."""
        if name == ROOT:
            return self.root
        try:
            comp: dict[str, Any] = self.components[name]
        except KeyError:
            raise NotFoundError(f"component {name!r} is not defined in the pipeline") from None
        return comp

    def dag_tasks(self, component: str) -> dict[str, Any]:
        tasks: dict[str, Any] = (self.component(component).get("dag") or {}).get("tasks") or {}
        return tasks

    def kubernetes_platform(self) -> dict[str, Any]:
        plat: dict[str, Any] = (self.platform.get("platforms") or {}).get("kubernetes") or {}
        return plat

    def executor_platform(self, executor_label: str) -> dict[str, Any]:
        """The kubernetes platform config of one executor (``activeDeadlineSeconds``, ...)."""
        execs = (self.kubernetes_platform().get("deploymentSpec") or {}).get("executors") or {}
        conf: dict[str, Any] = execs.get(executor_label) or {}
        return conf

    @property
    def workspace_size(self) -> str | None:
        """``PipelineConfig.workspace.size`` when the pipeline asks for a workspace."""
        config = self.kubernetes_platform().get("pipelineConfig") or {}
        size = (config.get("workspace") or {}).get("size")
        return str(size) if size else None

    def to_documents(self) -> list[dict[str, Any]]:
        """The YAML documents this IR came from (spec, then platform spec when present)."""
        docs = [copy.deepcopy(self.spec)]
        if self.platform:
            docs.append(copy.deepcopy(self.platform))
        return docs

    def to_yaml(self) -> str:
        return yaml.safe_dump_all(self.to_documents(), sort_keys=False)


def _parse_version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.strip().split("."))
    except ValueError:
        raise InvalidError(
            f"schemaVersion {text!r} is not a version number like 2.1.0",
            causes=[_cause("schemaVersion", "not a version number")],
        ) from None


def _cause(path: str, message: str) -> Any:
    from flowyard.errors import FieldCause

    return FieldCause(field=path, message=message)


def load_dict(documents: list[dict[str, Any]] | dict[str, Any], source: str = "") -> PipelineIR:
    """Build a :class:`PipelineIR` from parsed YAML documents and validate its structure."""
    docs = [documents] if isinstance(documents, dict) else [d for d in documents if d]
    if not docs:
        raise InvalidError(f"{source or 'pipeline'}: no YAML document found")
    spec: dict[str, Any] | None = None
    platform: dict[str, Any] = {}
    for doc in docs:
        if not isinstance(doc, dict):
            raise InvalidError(f"{source or 'pipeline'}: a document is not a mapping")
        _reject_other_formats(doc, source)
        if "platforms" in doc and "root" not in doc:
            platform = doc
        elif spec is None:
            spec = doc
    if spec is None:
        raise InvalidError(f"{source or 'pipeline'}: no PipelineSpec document (with 'root')")
    _check_schema_version(spec, source)
    ir = PipelineIR(spec=spec, platform=platform, source=source)
    from flowyard.pipelines.validate import validate_structure

    validate_structure(ir)
    return ir


def _reject_other_formats(doc: dict[str, Any], source: str) -> None:
    kind = doc.get("kind")
    api = str(doc.get("apiVersion", ""))
    if kind in ("Workflow", "WorkflowTemplate") and api.startswith("argoproj.io"):
        raise InvalidError(
            f"{source or 'document'} is an Argo {kind}, not KFP v2 IR; run it as an Argo workflow"
            " (KFP v1 output), or, if the KFP v2 backend produced it, compile the pipeline to IR"
            " with kfp.compiler.Compiler and run that file instead"
        )
    if "pipelineSpec" in doc and "root" not in doc:
        raise InvalidError(
            f"{source or 'document'} is a PipelineJob wrapper; pass its 'pipelineSpec' instead"
        )
    if "root" not in doc and "platforms" not in doc and "components" not in doc:
        raise InvalidError(
            f"{source or 'document'} is not a KFP pipeline IR: it has no 'root' DAG",
            causes=[_cause("root", "required")],
        )


def _check_schema_version(spec: dict[str, Any], source: str) -> None:
    text = str(spec.get("schemaVersion") or "")
    if not text:
        raise InvalidError(
            f"{source or 'pipeline'}: schemaVersion is missing; compile with kfp 2.x",
            causes=[_cause("schemaVersion", "required")],
        )
    version = _parse_version(text)
    if version[:1] != (2,) or version > SUPPORTED_SCHEMA_VERSION:
        raise InvalidError(
            f"{source or 'pipeline'}: IR schemaVersion {text} is not supported; flowyard runs"
            f" schemaVersion 2.x up to {'.'.join(map(str, SUPPORTED_SCHEMA_VERSION))}"
            " (compile with kfp 2.x, e.g. the kfp 2.17 SDK)",
            causes=[_cause("schemaVersion", f"{text} is newer than supported")],
        )


def load_yaml(path_or_text: str | Path) -> PipelineIR:
    """Load IR from a file path or from YAML/JSON text."""
    text: str
    source = ""
    if isinstance(path_or_text, Path) or (
        "\n" not in str(path_or_text) and Path(str(path_or_text)).exists()
    ):
        path = Path(path_or_text)
        source = str(path)
        text = path.read_text()
    else:
        text = str(path_or_text)
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise BadRequestError(f"{source or 'pipeline'}: not valid YAML: {exc}") from exc
    return load_dict(docs, source=source)


def from_function(func: Any, *, pipeline_name: str | None = None) -> PipelineIR:
    """Compile a ``@dsl.pipeline`` function (or any kfp component) with kfp and load the IR."""
    from kfp import compiler

    with tempfile.TemporaryDirectory(prefix="flowyard-compile-") as tmp:
        out = Path(tmp) / "pipeline.yaml"
        try:
            compiler.Compiler().compile(func, str(out), pipeline_name=pipeline_name)
        except Exception as exc:  # kfp raises many types; surface them as one clear error
            raise InvalidError(f"kfp could not compile {_func_name(func)}: {exc}") from exc
        ir = load_yaml(out)
    ir.source = _func_name(func)
    return ir


def _func_name(func: Any) -> str:
    return str(getattr(func, "name", None) or getattr(func, "__name__", None) or func)


def pipelines_in_module(path: Path) -> dict[str, Any]:
    """Import a Python file and return its ``@dsl.pipeline`` functions by name."""
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
    found: dict[str, Any] = {}
    for attr, value in vars(module).items():
        if isinstance(value, GraphComponent):
            found[attr] = value
    return found


def load_file(path: str | Path, *, pipeline: str | None = None) -> PipelineIR:
    """Load a pipeline from a YAML/JSON IR file or a Python file with ``@dsl.pipeline``."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    if path.suffix != ".py":
        if path.suffix == ".json":
            return load_dict(json.loads(path.read_text()), source=str(path))
        return load_yaml(path)
    found = pipelines_in_module(path)
    if not found:
        raise InvalidError(f"{path}: no @dsl.pipeline function found")
    if pipeline is None:
        if len(found) > 1:
            raise InvalidError(
                f"{path} defines several pipelines ({', '.join(sorted(found))});"
                " choose one with --pipeline NAME"
            )
        return from_function(next(iter(found.values())))
    for attr, comp in found.items():
        if pipeline in (attr, getattr(comp, "name", None)):
            return from_function(comp)
    raise NotFoundError(
        f"{path}: no pipeline named {pipeline!r}; it defines {', '.join(sorted(found))}"
    )
