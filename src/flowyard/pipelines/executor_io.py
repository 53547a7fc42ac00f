"""The executor contract: KFP's ``ExecutorInput`` JSON in, ``executor_output.json`` out.

:func:`build_executor_input` produces the dict that replaces ``{{$}}`` (protojson field names):
``inputs.parameterValues`` (given values plus declared defaults, as the launcher adds them),
``inputs.artifacts[name].artifacts[]`` (``name``, ``type``, ``uri``, ``metadata``),
``outputs.parameters[name].outputFile``, ``outputs.artifacts[name].artifacts[]`` with a fresh URI
under the pipeline root, and ``outputs.outputFile`` (the task's ``executor_output.json``).

:func:`collect_outputs` reads results back as the launcher does: ``executor_output.json`` first
(``parameterValues``; ``artifacts`` whose ``uri``/``metadata`` are merged into the declared output
artifacts), then each output parameter not found there from its ``outputFile``, parsed by its
declared type.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flowyard.pipelines import values
from flowyard.pipelines.placeholders import local_path

EXECUTOR_OUTPUT_FILE = "executor_output.json"


class OutputError(Exception):
    """A task finished but its outputs cannot be read (names the output)."""


def artifact_type(spec: dict[str, Any]) -> dict[str, Any]:
    """The ``ArtifactTypeSchema`` of an artifact definition (defaults to ``system.Artifact``)."""
    art_type = spec.get("artifactType") or {}
    return {
        "schemaTitle": art_type.get("schemaTitle", "system.Artifact"),
        "schemaVersion": art_type.get("schemaVersion", "0.0.1"),
    }


def join_uri(root: str, *parts: str) -> str:
    """Join URI/path segments with single slashes (works for local paths and ``s3://``)."""
    out = root.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def build_executor_input(
    component: dict[str, Any],
    parameters: dict[str, Any],
    artifacts: dict[str, list[dict[str, Any]]],
    *,
    output_uri_prefix: str,
    task_dir: Path,
) -> dict[str, Any]:
    """The ExecutorInput dict for one attempt of a task."""
    definitions = component.get("inputDefinitions") or {}
    param_values: dict[str, Any] = {}
    for name, spec in (definitions.get("parameters") or {}).items():
        if name in parameters and parameters[name] is not None:
            continue
        default = values.default_of(spec)
        if default is not None:
            param_values[name] = default
    param_values.update({k: v for k, v in parameters.items() if v is not None})
    inputs: dict[str, Any] = {"parameterValues": param_values}
    if artifacts:
        inputs["artifacts"] = {name: {"artifacts": arts} for name, arts in artifacts.items()}
    out_defs = component.get("outputDefinitions") or {}
    outputs: dict[str, Any] = {}
    out_params = {
        name: {"outputFile": str(task_dir / "outputs" / name)}
        for name in (out_defs.get("parameters") or {})
    }
    if out_params:
        outputs["parameters"] = out_params
    out_arts = {
        name: {
            "artifacts": [
                {
                    "name": name,
                    "type": artifact_type(spec),
                    "uri": join_uri(output_uri_prefix, name),
                    "metadata": {},
                }
            ]
        }
        for name, spec in (out_defs.get("artifacts") or {}).items()
    }
    if out_arts:
        outputs["artifacts"] = out_arts
    outputs["outputFile"] = str(task_dir / EXECUTOR_OUTPUT_FILE)
    return {"inputs": inputs, "outputs": outputs}


def prepare_output_dirs(executor_input: dict[str, Any], mount_root: str | None = None) -> None:
    """Create the parent directories of every local output (remote ones: of their staged
    paths under ``mount_root``), as the launcher does."""
    outputs = executor_input.get("outputs") or {}
    for spec in (outputs.get("parameters") or {}).values():
        Path(spec["outputFile"]).parent.mkdir(parents=True, exist_ok=True)
    for art_list in (outputs.get("artifacts") or {}).values():
        for art in art_list.get("artifacts") or []:
            path = local_path(str(art.get("uri", "")), mount_root)
            if path.startswith("/") and not path.startswith(("/s3/", "/gcs/", "/minio/")):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(outputs["outputFile"]).parent.mkdir(parents=True, exist_ok=True)


def _read_executor_output(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise OutputError(f"executor output {path} is not valid JSON: {exc}") from exc
    return data if isinstance(data, dict) else {}


def collect_outputs(
    component: dict[str, Any], executor_input: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Output parameters (typed) and output artifacts of a finished task attempt."""
    outputs = executor_input.get("outputs") or {}
    produced = _read_executor_output(str(outputs.get("outputFile", "")))
    out_defs = component.get("outputDefinitions") or {}
    params: dict[str, Any] = {}
    given = produced.get("parameterValues") or {}
    for name, spec in (out_defs.get("parameters") or {}).items():
        ptype = spec.get("parameterType", values.STRING)
        try:
            if name in given:
                params[name] = values.coerce(given[name], ptype)
                continue
            out_file = ((outputs.get("parameters") or {}).get(name) or {}).get("outputFile")
            if not out_file or not os.path.exists(out_file):
                raise OutputError(
                    f"output parameter {name!r} was not written (expected {out_file})"
                )
            with open(out_file) as handle:
                params[name] = values.from_output_text(handle.read(), ptype)
        except values.ParameterTypeError as exc:
            raise OutputError(f"output parameter {name!r}: {exc}") from exc
    artifacts: dict[str, list[dict[str, Any]]] = {}
    produced_arts = produced.get("artifacts") or {}
    for name, art_list in (outputs.get("artifacts") or {}).items():
        merged = []
        for index, art in enumerate(art_list.get("artifacts") or []):
            art = dict(art)
            reported = (produced_arts.get(name) or {}).get("artifacts") or []
            if index < len(reported):
                if reported[index].get("uri"):
                    art["uri"] = reported[index]["uri"]
                meta = dict(art.get("metadata") or {})
                meta.update(reported[index].get("metadata") or {})
                art["metadata"] = meta
            merged.append(art)
        artifacts[name] = merged
    return params, artifacts
