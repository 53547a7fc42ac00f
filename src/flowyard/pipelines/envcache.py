"""Run a step after making sure its ``packages_to_install`` are in a shared cache directory.

Usage (built by ``command.plan_command``; runs under the control plane's interpreter)::

    python -m flowyard.pipelines.envcache --python STEP_PY --target DIR \\
        [--pip-option=OPT ...] --requirement=REQ ... -- ARGV...

The first step to need ``DIR`` installs the requirements with ``STEP_PY -m pip install --target``
into a temporary sibling directory and renames it into place, holding an exclusive lock so that
concurrent steps wait instead of installing twice. Then the step's argv is exec'ed with ``DIR``
first on ``PYTHONPATH``, keeping the step's process group and pid.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" not in argv:
        raise SystemExit("envcache: missing '--' before the step command")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="flowyard.pipelines.envcache")
    parser.add_argument("--python", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--pip-option", action="append", default=[])
    parser.add_argument("--requirement", action="append", default=[])
    return parser.parse_args(argv[:split]), argv[split + 1 :]


def ensure(python: str, target: Path, requirements: list[str], options: list[str]) -> None:
    """Install ``requirements`` into ``target`` once (idempotent, safe under concurrency)."""
    done = target / ".flowyard-complete"
    if done.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(str(target) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return
        staging = Path(str(target) + ".staging")
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-warn-script-location",
            "--disable-pip-version-check",
            "--target",
            str(staging),
            *options,
            *requirements,
        ]
        print(f"flowyard: installing {' '.join(requirements)} into {target}", flush=True)
        subprocess.run(cmd, check=True, timeout=1800)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
        done.touch()


def main(argv: list[str] | None = None) -> None:
    args, command = _parse(list(sys.argv[1:] if argv is None else argv))
    target = Path(args.target)
    try:
        ensure(args.python, target, args.requirement, args.pip_option)
    except subprocess.CalledProcessError as exc:
        print(f"flowyard: pip install failed with exit code {exc.returncode}", file=sys.stderr)
        raise SystemExit(exc.returncode or 1) from exc
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(target) + (os.pathsep + old if old else "")
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
