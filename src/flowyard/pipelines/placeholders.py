"""Placeholder resolution for container commands, as KFP's driver and launcher do it.

Two layers:

* run/task placeholders (``{{$.pipeline_job_name}}``, ``{{$.pipeline_task_uuid}}``,
  ``{{$.pipeline_root}}``, ``{{$.workspace_path}}``, ...) — also resolved inside input parameter
  constants and f-string inputs, see :func:`resolve_runtime`;
* the executor's I/O placeholders in ``command``/``args``: ``{{$}}`` (the executor input JSON),
  ``{{$.inputs.parameters['x']}}``, ``{{$.inputs.artifacts['x'].path|uri|metadata}}``,
  ``{{$.outputs.artifacts['x'].path|uri}}``, ``{{$.outputs.parameters['x'].output_file}}``,
  ``{{$.outputs.output_file}}``, and the structured ``{"Concat": [...]}`` and
  ``{"IfPresent": {"InputName": ..., "Then": ..., "Else": ...}}`` elements, see
  :func:`resolve_command`.

A placeholder naming something the executor input does not hold is left as written, which is
what KFP's launcher does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flowyard.errors import InvalidError
from flowyard.pipelines import values

_IO = re.compile(
    r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\[(?:'([^']*)'|\"([^\"]*)\")\]"
    r"(?:\.([A-Za-z_]+))?\}\}"
)
WORKSPACE_MOUNT_PATH = "/kfp-workspace"


@dataclass(frozen=True)
class RuntimeContext:
    """Run- and task-level values that ``{{$.pipeline_*}}`` placeholders resolve to."""

    job_name: str
    job_id: str
    task_name: str
    task_id: str
    pipeline_root: str
    create_time: str
    schedule_time: str
    workspace_path: str | None = None
    # where remote (s3://) artifacts of this step are staged; None for a local step
    mount_root: str | None = None

    def table(self) -> dict[str, str]:
        table = {
            "{{$.pipeline_job_name}}": self.job_name,
            "{{$.pipeline_job_resource_name}}": self.job_name,
            "{{$.pipeline_job_uuid}}": self.job_id,
            "{{$.pipeline_task_name}}": self.task_name,
            "{{$.pipeline_task_uuid}}": self.task_id,
            "{{$.pipeline_root}}": self.pipeline_root,
            "{{$.pipeline_job_create_time_utc}}": self.create_time,
            "{{$.pipeline_job_schedule_time_utc}}": self.schedule_time,
        }
        if self.workspace_path:
            table["{{$.workspace_path}}"] = self.workspace_path
        return table


def resolve_runtime(text: str, ctx: RuntimeContext) -> str:
    """Replace run/task placeholders in ``text``; ``{{$.workspace_path}}`` (and the in-pod
    mount path KFP uses) map to the run's workspace directory."""
    if "{{$." not in text and WORKSPACE_MOUNT_PATH not in text:
        return text
    if "{{$.workspace_path}}" in text and not ctx.workspace_path:
        raise InvalidError(
            f"task {ctx.task_name!r} uses the workspace but the pipeline has no"
            " PipelineConfig(workspace=WorkspaceConfig(size=...))"
        )
    for key, value in ctx.table().items():
        text = text.replace(key, value)
    if ctx.workspace_path:
        text = text.replace(WORKSPACE_MOUNT_PATH, ctx.workspace_path)
    return text


def resolve_self_references(params: dict[str, Any]) -> dict[str, Any]:
    """Resolve f-string inputs: a string parameter holding ``{{$.inputs.parameters['y']}}``
    takes the text of parameter ``y`` of the same task."""
    out = dict(params)
    for name, value in params.items():
        if isinstance(value, str) and "{{$.inputs.parameters[" in value:
            out[name] = _IO.sub(lambda m: _param_ref(m, params), value)
    return out


def _param_ref(match: re.Match[str], params: dict[str, Any]) -> str:
    io, kind, key = match.group(1), match.group(2), match.group(3) or match.group(4)
    if io == "inputs" and kind == "parameters" and key in params and params[key] is not None:
        return values.placeholder_text(params[key])
    return match.group(0)


def local_path(uri: str, mount_root: str | None = None) -> str:
    """The local path of an artifact URI (KFP SDK semantics: a plain path is its own path).

    With ``mount_root`` (a step staging remote artifacts) an ``s3://b/k`` URI maps to
    ``<mount_root>/s3/b/k``, where ``flowyard.pipelines.stage`` puts the file."""
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if mount_root and uri.startswith("s3://"):
        return f"{mount_root.rstrip('/')}/s3/{uri[len('s3://') :]}"
    for prefix, mount in (("gs://", "/gcs/"), ("s3://", "/s3/"), ("minio://", "/minio/")):
        if uri.startswith(prefix):
            return mount + uri[len(prefix) :]
    return uri


def _provided(executor_input: dict[str, Any]) -> set[str]:
    inputs = executor_input.get("inputs") or {}
    names = {k for k, v in (inputs.get("parameterValues") or {}).items() if v is not None}
    names |= {k for k, v in (inputs.get("artifacts") or {}).items() if v and v.get("artifacts")}
    return names


def _expand_struct(node: Any, provided: set[str]) -> list[str]:
    """Expand a Concat/IfPresent structure into zero or more command-line strings."""
    if node is None:
        return []
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for item in node for s in _expand_struct(item, provided)]
    if isinstance(node, dict) and "Concat" in node:
        return ["".join(s for item in node["Concat"] for s in _expand_struct(item, provided))]
    if isinstance(node, dict) and "IfPresent" in node:
        spec = node["IfPresent"]
        branch = spec.get("Then") if spec.get("InputName") in provided else spec.get("Else")
        return _expand_struct(branch, provided)
    raise InvalidError(f"unknown structured placeholder {json.dumps(node)[:200]}")


def _maybe_struct(item: str) -> Any:
    stripped = item.lstrip()
    if stripped.startswith('{"Concat"') or stripped.startswith('{"IfPresent"'):
        try:
            return json.loads(stripped)
        except ValueError:
            return item
    return item


def _io_value(
    match: re.Match[str], executor_input: dict[str, Any], mount_root: str | None = None
) -> str:
    io, kind, key, attr = (
        match.group(1),
        match.group(2),
        match.group(3) or match.group(4),
        match.group(5),
    )
    section = executor_input.get(io) or {}
    if kind == "parameters":
        if io == "inputs":
            params = section.get("parameterValues") or {}
            if key in params and params[key] is not None:
                return values.placeholder_text(params[key])
            return match.group(0)
        out = (section.get("parameters") or {}).get(key)
        return str(out["outputFile"]) if out and attr == "output_file" else match.group(0)
    arts = ((section.get("artifacts") or {}).get(key) or {}).get("artifacts") or []
    if not arts:
        return match.group(0)
    art = arts[0]
    if attr == "uri":
        return str(art.get("uri", ""))
    if attr == "path":
        return local_path(str(art.get("uri", "")), mount_root)
    if attr == "metadata":
        return json.dumps(art.get("metadata") or {})
    return match.group(0)


def resolve_string(text: str, executor_input: dict[str, Any], ctx: RuntimeContext) -> str:
    """Resolve every placeholder in one command-line string."""
    if "{{$" not in text and WORKSPACE_MOUNT_PATH not in text:
        return text
    if "{{$}}" in text:
        # the JSON itself is never searched for placeholders
        whole = json.dumps(executor_input)
        return whole.join(resolve_string(p, executor_input, ctx) for p in text.split("{{$}}"))
    outputs = executor_input.get("outputs") or {}
    if "outputFile" in outputs:
        text = text.replace("{{$.outputs.output_file}}", str(outputs["outputFile"]))
        text = text.replace("{{$.outputMetadataUri}}", str(outputs["outputFile"]))
    text = _IO.sub(lambda m: _io_value(m, executor_input, ctx.mount_root), text)
    return resolve_runtime(text, ctx)


def resolve_command(
    items: list[str], executor_input: dict[str, Any], ctx: RuntimeContext
) -> list[str]:
    """Resolve ``command + args`` into the argv to run."""
    provided = _provided(executor_input)
    expanded: list[str] = []
    for item in items:
        expanded.extend(_expand_struct(_maybe_struct(item), provided))
    return [resolve_string(s, executor_input, ctx) for s in expanded]
