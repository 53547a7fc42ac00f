"""How a KFP container spec becomes a host process.

Lightweight Python components compile to::

    sh -c "<install kfp and packages_to_install with pip>; \"$0\" \"$@\"" \\
       sh -ec "<write the function to a file>; python3 -m kfp.dsl.executor_main ..." <code> <args>

The first three elements are a preamble that runs pip on every step. :func:`plan_command` drops
exactly that ``sh -c PREAMBLE`` triple (whose last act is ``"$0" "$@"``, i.e. running the rest
unchanged) when every requirement it installs is already satisfied in the step's interpreter
(``kfp`` itself counts as satisfied when any ``kfp`` is importable: the compiled pin is the SDK
that compiled the file, not a runtime need). Requirements that are not satisfied are installed
once per (interpreter, requirement set) into a cached ``--target`` directory that later steps put
on ``PYTHONPATH`` (``flowyard.pipelines.envcache``), never a fresh venv per step.

``python3`` in the remaining command resolves to the step's interpreter because the interpreter's
directory goes first on ``PATH`` (the command itself is not rewritten). Container components
(anything else) run their resolved command unchanged on the host; their image is only recorded.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowyard import config

_PIP_SEGMENT = re.compile(r"-m pip install (.*?)(?=&&|\n|$)", re.S)
_OPTS_WITH_VALUE = {
    "-i",
    "--index-url",
    "--extra-index-url",
    "--trusted-host",
    "-f",
    "--find-links",
}


@dataclass
class CommandPlan:
    """The argv to run and what it needs from the environment."""

    argv: list[str]
    lightweight: bool = False
    skipped_preamble: bool = False
    requirements: list[str] = field(default_factory=list)
    install_options: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def split_preamble(command: list[str]) -> tuple[str, list[str]] | None:
    """``(preamble_script, rest)`` when ``command`` starts with KFP's pip preamble."""
    if len(command) < 4 or command[0] != "sh" or command[1] != "-c":
        return None
    script = command[2]
    if "pip install" not in script or not script.rstrip().endswith('"$0" "$@"'):
        return None
    return script, command[3:]


def parse_requirements(script: str) -> tuple[list[str], list[str]]:
    """Requirement strings and pip options from the preamble's ``pip install`` commands."""
    requirements: list[str] = []
    options: list[str] = []
    for segment in _PIP_SEGMENT.findall(script):
        try:
            tokens = shlex.split(segment)
        except ValueError:
            continue
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token in _OPTS_WITH_VALUE and index + 1 < len(tokens):
                options.extend(tokens[index : index + 2])
                index += 2
                continue
            if token.startswith("-"):
                if token not in ("--quiet", "--no-warn-script-location", "--no-deps"):
                    options.append(token)
            else:
                requirements.append(token)
            index += 1
    return list(dict.fromkeys(requirements)), list(dict.fromkeys(options))


@functools.lru_cache(maxsize=16)
def installed_distributions(python: str) -> dict[str, str]:
    """``{normalized name: version}`` of the distributions importable by ``python``."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        import importlib.metadata as md

        return {_norm(d.metadata["Name"] or ""): d.version for d in md.distributions()}
    probe = (
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    try:
        out = subprocess.run(
            [python, "-c", probe], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        return {_norm(k): v for k, v in json.loads(out).items() if k}
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def unsatisfied(requirements: list[str], python: str) -> list[str]:
    """The requirements ``python`` does not already satisfy (markers evaluated for this host)."""
    from packaging.requirements import InvalidRequirement, Requirement

    have = installed_distributions(python)
    missing: list[str] = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            missing.append(text)  # a URL or path: let pip handle it
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = _norm(req.name)
        # any installed kfp runs the component: the compiled pin names the compiling SDK
        version_ok = name == "kfp" or req.specifier.contains(have.get(name, ""), prereleases=True)
        if name not in have or not version_ok:
            missing.append(text)
    return missing


def env_cache_dir(python: str, requirements: list[str], options: list[str]) -> Path:
    """The shared ``--target`` directory for one interpreter and requirement set."""
    key = json.dumps([os.path.realpath(python), sorted(requirements), options])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return config.home() / "pipelines" / "envs" / digest


def plan_command(command: list[str], python: str) -> CommandPlan:
    """Decide how to run ``command + args`` (already resolved) with step interpreter ``python``."""
    split = split_preamble(command)
    lightweight = any("kfp.dsl.executor_main" in part for part in command)
    if split is None:
        return CommandPlan(argv=list(command), lightweight=lightweight)
    script, rest = split
    requirements, options = parse_requirements(script)
    missing = unsatisfied(requirements, python)
    if not missing:
        return CommandPlan(
            argv=rest, lightweight=True, skipped_preamble=True, requirements=requirements
        )
    target = env_cache_dir(python, missing, options)
    argv = [
        sys.executable, "-m", "flowyard.pipelines.envcache",
        "--python", python, "--target", str(target),
        *[f"--pip-option={opt}" for opt in options],
        *[f"--requirement={req}" for req in missing],
        "--", *rest,
    ]  # fmt: skip
    return CommandPlan(
        argv=argv,
        lightweight=True,
        skipped_preamble=True,
        requirements=requirements,
        install_options=options,
        missing=missing,
    )


# KFP's launcher script for lightweight components (kfp.dsl.component_factory), whitespace-exact
# up to runs of blanks: write the code ($0) to a fresh temp dir, run the executor module on it
_KFP_LAUNCHER = re.compile(
    r"program_path=\$\(mktemp -d\)\s+"
    r'printf "%s" "\$0" > "\$program_path/ephemeral_component\.py"\s+'
    r"_KFP_RUNTIME=true python3 -m ([A-Za-z0-9_.]+)\s+--component_module_path\s+"
    r'"\$program_path/ephemeral_component\.py"\s+"\$@"\s*'
)
RUNTIME_ENV = {"_KFP_RUNTIME": "true"}


def inline_kfp_launcher(argv: list[str], program_dir: Path) -> tuple[list[str], bool]:
    """Run KFP's lightweight launcher script without its shell.

    The script (``sh -ec SCRIPT CODE ARGS...``) only writes ``CODE`` to
    ``$(mktemp -d)/ephemeral_component.py`` and runs ``_KFP_RUNTIME=true python3 -m
    kfp.dsl.executor_main --component_module_path FILE ARGS...``. When ``argv`` holds exactly
    that script, the code is written to ``program_dir/ephemeral_component.py`` now (the task's
    work directory, where ``mktemp`` would have put it: TMPDIR is under it) and the triple is
    replaced by the ``python3`` command, saving the ``sh`` and ``mktemp`` processes of every
    step. The caller adds :data:`RUNTIME_ENV` to the environment. Anything else is returned
    unchanged (``False``)."""
    for i in range(len(argv) - 3):
        if argv[i] != "sh" or argv[i + 1] != "-ec":
            continue
        match = _KFP_LAUNCHER.fullmatch(argv[i + 2])
        if match is None:
            continue
        program_dir.mkdir(parents=True, exist_ok=True)
        program = program_dir / "ephemeral_component.py"
        program.write_bytes(argv[i + 3].encode())
        module = ["python3", "-m", match.group(1), "--component_module_path", str(program)]
        return [*argv[:i], *module, *argv[i + 4 :]], True
    return argv, False


def step_environment(
    python: str, container_env: list[dict[str, Any]], tmp_dir: Path
) -> dict[str, str]:
    """Environment for a step: the interpreter first on PATH, a private TMPDIR, the IR's env."""
    path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    env = {
        "PATH": f"{os.path.dirname(python)}{os.pathsep}{path}",
        "TMPDIR": str(tmp_dir),
        "PYTHONUNBUFFERED": "1",
    }
    for item in container_env or []:
        if item.get("name"):
            env[str(item["name"])] = str(item.get("value", ""))
    return env
