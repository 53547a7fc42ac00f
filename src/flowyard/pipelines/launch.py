"""Turning one container task into a ProcessSpec, and an importer task into an artifact.

A container task attempt gets its own work directory ``<runDir>/tasks/<task id>/`` (the
``executor_output.json``, output-parameter files and ``TMPDIR``, emptied before each attempt),
its output artifacts under ``<pipeline root>/<pipeline name>/<run id>/<task id>/<output>``, and
its log at ``FLOWYARD_HOME/logs/pipelines/<run id>/<task id>.log`` (attempts append).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowyard import config
from flowyard.executors.base import Preload, ProcessSpec, Resources
from flowyard.pipelines import command as cmd
from flowyard.pipelines import remote, values
from flowyard.pipelines.executor_io import artifact_type, build_executor_input, join_uri
from flowyard.pipelines.placeholders import RuntimeContext, resolve_command, resolve_runtime

LABEL_RUN = "pipelines.flowyard.io/run"
LABEL_TASK = "pipelines.flowyard.io/task"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
# What a lightweight step imports anyway: KFP's executor (with it kfp.dsl, about 0.07 s of a
# no-op step) and shutil, which argparse imports when the executor builds its parser.
KFP_PRELOAD = Preload(
    modules=("kfp.dsl.executor_main", "shutil"), env=tuple(cmd.RUNTIME_ENV.items())
)


@dataclass
class PreparedStep:
    """Everything needed to launch (or cache-hit) one attempt of a container task."""

    executor_input: dict[str, Any]
    spec: ProcessSpec
    plan: cmd.CommandPlan
    # the staging directory of remote artifacts, None when the step has none
    mount_root: str | None = None


def safe(text: str) -> str:
    return _SAFE.sub("_", text) or "_"


def task_dir(run_dir: str, task_id: str) -> Path:
    return Path(run_dir) / "tasks" / Path(*[safe(p) for p in task_id.split("/")])


def log_path(run_id: str, task_id: str, log_dir: str | None = None) -> Path:
    directory = Path(log_dir) if log_dir else config.logs_dir() / "pipelines" / safe(run_id)
    return directory / f"{safe(task_id.replace('/', '.'))}.log"


def process_name(run_id: str, task_id: str, attempt: int) -> str:
    digest = hashlib.sha1(task_id.encode()).hexdigest()[:12]
    return f"pipeline-{safe(run_id)}-{digest}-{attempt}"


def output_prefix(pipeline_root: str, pipeline_name: str, run_id: str, task_id: str) -> str:
    return join_uri(
        pipeline_root, safe(pipeline_name), safe(run_id), *map(safe, task_id.split("/"))
    )


def container_resources(container: dict[str, Any]) -> Resources:
    """Executor resources from the IR's ``container.resources`` (requests, else limits)."""
    from flowyard.resources.quantity import cpu_cores, memory_bytes, whole_count

    res = container.get("resources") or {}
    cpu = 0.0
    if res.get("resourceCpuRequest") or res.get("resourceCpuLimit"):
        cpu = cpu_cores(str(res.get("resourceCpuRequest") or res.get("resourceCpuLimit")))
    elif res.get("cpuRequest") or res.get("cpuLimit"):
        cpu = float(res.get("cpuRequest") or res.get("cpuLimit") or 0)
    memory = 0
    if res.get("resourceMemoryRequest") or res.get("resourceMemoryLimit"):
        text = str(res.get("resourceMemoryRequest") or res.get("resourceMemoryLimit"))
        memory = memory_bytes(text)
    elif res.get("memoryRequest") or res.get("memoryLimit"):
        # the compiler writes these numbers in GB (decimal), e.g. '100M' -> 0.1
        memory = int(float(res.get("memoryRequest") or res.get("memoryLimit") or 0) * 1e9)
    accel = res.get("accelerator") or {}
    gpu = 0
    count = accel.get("resourceCount") or accel.get("count")
    if count:
        gpu = whole_count(str(count), field="accelerator.count")
    return Resources(cpu=cpu, memory=memory, gpu=gpu)


def prepare_step(
    *,
    run: dict[str, Any],
    node: dict[str, Any],
    component: dict[str, Any],
    container: dict[str, Any],
    ctx: RuntimeContext,
    deadline: float | None,
    clear: bool = True,
) -> PreparedStep:
    """Build the executor input and the ProcessSpec for the node's current attempt.

    ``clear`` (the default) empties the task's work directory first. A caller that is adopting
    an existing process of this attempt (a restart between launch and the status write) passes
    ``clear=False``: the spec is the same, and the files that process writes survive."""
    work = task_dir(run["runDir"], node["id"])
    if clear:
        shutil.rmtree(work, ignore_errors=True)
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    executor_input = build_executor_input(
        component,
        node["inputs"]["parameters"],
        node["inputs"]["artifacts"],
        output_uri_prefix=output_prefix(
            run["pipelineRoot"], run["pipelineName"], run["runId"], node["id"]
        ),
        task_dir=work,
    )
    mount_root: str | None = str(work / "mnt")
    staging = remote.transfers(executor_input, str(mount_root))
    if not staging["downloads"] and not staging["uploads"]:
        mount_root = None
    argv = resolve_command(
        [*(container.get("command") or []), *(container.get("args") or [])],
        executor_input,
        dataclasses.replace(ctx, mount_root=mount_root),
    )
    plan = cmd.plan_command(argv, run["python"])
    env = cmd.step_environment(run["python"], container.get("env") or [], work / "tmp")
    argv, inlined = cmd.inline_kfp_launcher(plan.argv, work / "program")
    if inlined:
        env.update(cmd.RUNTIME_ENV)
    if mount_root is not None:
        argv = remote.wrap_step(argv, env, work, mount_root, staging, sys.executable)
    logs = log_path(run["runId"], node["id"], run.get("logDir"))
    logs.parent.mkdir(parents=True, exist_ok=True)
    spec = ProcessSpec(
        name=process_name(run["runId"], node["id"], node["attempt"]),
        argv=argv,
        log_path=str(logs),
        env=env,
        cwd=run.get("workspace") or str(work),
        resources=container_resources(container),
        labels={
            **(run.get("processLabels") or {}),
            LABEL_RUN: safe(run["runId"]),
            LABEL_TASK: safe(node["id"])[:250],
        },
        deadline_seconds=deadline,
        # only when the KFP executor is the step itself, not a child of a flowyard helper
        preload=KFP_PRELOAD if inlined and not plan.missing and mount_root is None else None,
    )
    return PreparedStep(executor_input=executor_input, spec=spec, plan=plan, mount_root=mount_root)


def run_importer(
    *,
    run: dict[str, Any],
    node: dict[str, Any],
    importer: dict[str, Any],
    ctx: RuntimeContext,
) -> dict[str, list[dict[str, Any]]]:
    """The importer's output artifact; ``http(s)://`` sources are downloaded under the run's
    pipeline root so that ``.path`` is readable by later steps."""
    params = node["inputs"]["parameters"]
    uri_spec = importer.get("artifactUri") or {}
    uri = params.get(uri_spec["runtimeParameter"]) if "runtimeParameter" in uri_spec else None
    if uri is None:
        uri = uri_spec.get("constant", params.get("uri"))
    if not isinstance(uri, str) or not uri:
        raise ValueError(f"importer {node['name']!r} has no artifact URI")
    uri = resolve_runtime(uri, ctx)
    metadata = _importer_metadata(importer.get("metadata") or {}, params, ctx)
    if uri.startswith(("http://", "https://")):
        source = uri
        uri = _download(source, run, node)
        metadata.setdefault("source_uri", source)
    elif uri.startswith("file://"):
        uri = urllib.parse.unquote(uri[len("file://") :])
    art = {
        "name": "artifact",
        "type": artifact_type({"artifactType": importer.get("typeSchema") or {}}),
        "uri": uri,
        "metadata": metadata,
    }
    return {"artifact": [art]}


def _importer_metadata(
    meta: dict[str, Any], params: dict[str, Any], ctx: RuntimeContext
) -> dict[str, Any]:
    def sub(value: Any) -> Any:
        if isinstance(value, str):
            match = re.fullmatch(r"\{\{\$\.inputs\.parameters\['([^']*)'\]\}\}", value)
            if match and match.group(1) in params:
                return params[match.group(1)]
            value = re.sub(
                r"\{\{\$\.inputs\.parameters\['([^']*)'\]\}\}",
                lambda m: values.placeholder_text(params.get(m.group(1), m.group(0))),
                value,
            )
            return resolve_runtime(value, ctx)
        if isinstance(value, dict):
            return {sub(k): sub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [sub(v) for v in value]
        return value

    out: dict[str, Any] = sub(meta)
    return out


def _download(url: str, run: dict[str, Any], node: dict[str, Any]) -> str:
    root = str(run["pipelineRoot"])
    if remote.is_remote(root):  # the control plane never writes remote storage: keep it local
        root = str(Path(run["runDir"]) / "imports")
    prefix = output_prefix(root, run["pipelineName"], run["runId"], node["id"])
    name = safe(Path(urllib.parse.urlparse(url).path).name or "artifact")
    target = Path(prefix) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
        shutil.copyfileobj(response, out)
    return str(target)
