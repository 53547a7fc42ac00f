"""Running one Argo ``container``/``script`` template invocation as a host process.

Mapping (the image is recorded, never pulled): the container's ``command + args`` (a script
template: ``command`` + the script file) run on this host. Each absolute path the template
declares — input artifact paths and output parameter/artifact paths — is moved into the step's
own directory ``FLOWYARD_HOME/pipelines/workflows/<uid>/<node>/fs/<path>``, and every occurrence
of it in the command, args, script and env is rewritten, so parallel steps writing
``/tmp/out.txt`` do not collide. A shim directory first on ``PATH`` provides ``python`` (the
control plane's interpreter) and ``cowsay`` (for ``argoproj/argosay``-style examples).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

from flowyard import config
from flowyard.executors.base import ProcessSpec
from flowyard.pipelines.launch import container_resources

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_COWSAY = """#!/bin/sh
text="$*"
[ -z "$text" ] && text="$(cat)"
n=${#text}
line=$(printf '%*s' $((n + 2)) '' | tr ' ' '_')
echo " $line"
echo "< $text >"
echo " $(printf '%*s' $((n + 2)) '' | tr ' ' '-')"
echo "        \\\\   ^__^"
echo "         \\\\  (oo)\\\\_______"
echo "            (__)\\\\       )\\\\/\\\\"
echo "                ||----w |"
echo "                ||     ||"
"""


def safe(text: str) -> str:
    return _SAFE.sub("_", text) or "_"


def shim_dir() -> Path:
    """``FLOWYARD_HOME/pipelines/argo-shims`` with ``python`` and ``cowsay``."""
    directory = config.home() / "pipelines" / "argo-shims"
    directory.mkdir(parents=True, exist_ok=True)
    python = directory / "python"
    if not python.exists():
        with_tmp = directory / f".python-{os.getpid()}"
        with_tmp.unlink(missing_ok=True)
        os.symlink(sys.executable, with_tmp)
        os.replace(with_tmp, python)
    cowsay = directory / "cowsay"
    if not cowsay.exists():
        cowsay.write_text(_COWSAY)
        cowsay.chmod(cowsay.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory


def node_dir(run_dir: str, node_id: str) -> Path:
    return Path(run_dir) / "nodes" / safe(node_id)


def host_path(fs_root: Path, declared: str) -> str:
    return str(fs_root / declared.lstrip("/"))


def declared_paths(template: dict[str, Any]) -> list[str]:
    """The absolute paths a template reads inputs from or writes outputs to."""
    paths = []
    for art in (template.get("inputs") or {}).get("artifacts") or []:
        if art.get("path"):
            paths.append(str(art["path"]))
    outputs = template.get("outputs") or {}
    for param in outputs.get("parameters") or []:
        path = (param.get("valueFrom") or {}).get("path")
        if path:
            paths.append(str(path))
    for art in outputs.get("artifacts") or []:
        if art.get("path"):
            paths.append(str(art["path"]))
    return sorted({p for p in paths if p.startswith("/")}, key=len, reverse=True)


def rewrite(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in mapping.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [rewrite(v, mapping) for v in value]
    return value


def process_name(uid: str, node_id: str, attempt: int) -> str:
    digest = hashlib.sha1(node_id.encode()).hexdigest()[:12]
    return f"wf-{safe(uid)[:40]}-{digest}-{attempt}"


def build_spec(
    *,
    template: dict[str, Any],
    node: dict[str, Any],
    uid: str,
    run_dir: str,
    log_dir: str,
    labels: dict[str, str],
    input_files: dict[str, str],
    prepare: bool = True,
) -> ProcessSpec:
    """The ProcessSpec of the node's next attempt (``template`` already substituted);
    ``input_files`` maps declared input artifact paths to stored artifact files.

    ``prepare`` (the default) empties the node's directory and copies the input artifacts in;
    ``prepare=False`` builds the same spec without touching the directory, for adopting a
    process of this attempt that already exists (its files must survive)."""
    work = node_dir(run_dir, node["id"])
    fs_root = work / "fs"
    mapping = {p: host_path(fs_root, p) for p in declared_paths(template)}
    if prepare:
        shutil.rmtree(work, ignore_errors=True)
        (work / "tmp").mkdir(parents=True, exist_ok=True)
        for declared in mapping.values():
            Path(declared).parent.mkdir(parents=True, exist_ok=True)
        for declared, source in input_files.items():
            _copy(Path(source), Path(host_path(fs_root, declared)))
    body = template.get("container") or template.get("script") or {}
    argv = [*(body.get("command") or []), *(body.get("args") or [])]
    if "script" in template:
        script = work / "script"
        script.write_text(rewrite(str(body.get("source") or ""), mapping))
        argv = [*(body.get("command") or ["sh"]), str(script)]
    if not argv:
        raise ValueError(
            f"template {template.get('name')!r} has no command: flowyard runs the container's "
            "command on this host and does not pull images, so set command (and args)"
        )
    env = {
        "PATH": f"{shim_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
        "TMPDIR": str(work / "tmp"),
        "PYTHONUNBUFFERED": "1",
    }
    for item in body.get("env") or []:
        if "value" in item:
            env[str(item["name"])] = rewrite(str(item["value"]), mapping)
    return ProcessSpec(
        name=process_name(uid, node["id"], node["attempt"]),
        argv=rewrite([str(a) for a in argv], mapping),
        log_path=str(Path(log_dir) / f"{node['logName']}.log"),
        env=env,
        cwd=str(work),
        resources=container_resources(body),
        labels=labels,
    )


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copyfile(source, target)


def collect(
    template: dict[str, Any], run_dir: str, node_id: str, artifact_dir: Path, log_path: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """Output parameters, stored output artifacts and ``result`` (the step's log, without
    flowyard's header lines) of a finished pod. ValueError names a missing output."""
    fs_root = node_dir(run_dir, node_id) / "fs"
    outputs = template.get("outputs") or {}
    params = []
    for param in outputs.get("parameters") or []:
        source = param.get("valueFrom") or {}
        value = param.get("value")
        if source.get("path"):
            path = Path(host_path(fs_root, str(source["path"])))
            if path.is_file():
                value = path.read_text(errors="replace").rstrip("\n")
            elif "default" in source:
                value = str(source["default"])
            else:
                raise ValueError(f"output parameter {param['name']!r}: {source['path']} not found")
        params.append({"name": param["name"], "value": value})
    arts = []
    for art in outputs.get("artifacts") or []:
        path = Path(host_path(fs_root, str(art.get("path") or "")))
        if not path.exists():
            if art.get("optional"):
                continue
            raise ValueError(f"output artifact {art['name']!r}: {art.get('path')} not found")
        stored = artifact_dir / safe(node_id) / safe(art["name"])
        if stored.exists():
            shutil.rmtree(stored) if stored.is_dir() else stored.unlink()
        _copy(path, stored)
        arts.append({"name": art["name"], "path": art.get("path"), "uri": str(stored)})
    text = Path(log_path).read_text(errors="replace") if Path(log_path).exists() else ""
    last_attempt = text.rsplit("---- flowyard:", 1)[-1].partition("\n")[2] if text else ""
    return params, arts, last_attempt.strip()
