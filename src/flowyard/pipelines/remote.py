"""Remote (``s3://``) pipeline roots and artifacts: the control-plane half.

KFP's SDK gives every artifact a ``.uri`` and derives ``.path`` from it (``s3://b/k`` ->
``/s3/b/k``); in a cluster, KFP's launcher downloads the inputs to those paths before the user
code runs and uploads the outputs after. flowyard does the same per step, on the host:

* a step whose input or output artifacts have ``s3://`` URIs gets a staging directory
  ``<task dir>/mnt`` (the *mount root*); ``s3://b/k`` is staged at ``<mount root>/s3/b/k``;
* the step runs under ``python -m flowyard.pipelines.stage`` (:mod:`.stage`), which downloads the
  inputs, runs the command, and after exit 0 uploads the outputs (files or directories);
* ``.uri`` stays the ``s3://`` URI everywhere (executor input, outputs, cache, run status);
  ``.path`` is the staged file: for container components flowyard resolves
  ``{{$.inputs/outputs.artifacts['x'].path}}`` to it, and for lightweight Python components a
  ``sitecustomize`` hook (``kfp_mounts/``, put first on the step's ``PYTHONPATH``) points kfp's
  ``/s3/`` prefix at ``<mount root>/s3/``.

Credentials and endpoint come from the standard variables of the control plane's environment
(:data:`FORWARDED_ENV`), passed to staging steps only when set. ``FLOWYARD_S3_ENDPOINT_URL``
(else ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``) selects an S3-compatible endpoint.
The control plane itself never reads or writes remote artifacts.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from flowyard.errors import InvalidError

REMOTE_PREFIXES = ("s3://",)
MOUNT_ENV = "FLOWYARD_KFP_MOUNT_ROOT"
FORWARDED_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_CA_BUNDLE",
    "FLOWYARD_S3_ENDPOINT_URL",
)
MANIFEST_FILE = "staging.json"


def is_remote(uri: str) -> bool:
    return uri.startswith(REMOTE_PREFIXES)


def pipeline_root(root: str) -> str:
    """The normalized pipeline root: an absolute local path, or ``s3://bucket[/prefix]``.

    InvalidError for another scheme, an ``s3://`` URI without a bucket, or when ``s3fs`` (which
    the steps use to transfer artifacts) is not installed."""
    if root.startswith("file://"):
        root = root[len("file://") :]
    if "://" not in root:
        return str(Path(root).absolute())
    if not is_remote(root):
        scheme = root.split("://", 1)[0]
        raise InvalidError(
            f"pipeline root {root!r}: scheme {scheme}:// is not supported; use a local"
            " directory, file://PATH or s3://BUCKET/PREFIX"
        )
    if not root[len("s3://") :].strip("/"):
        raise InvalidError(f"pipeline root {root!r} names no bucket: use s3://BUCKET/PREFIX")
    if importlib.util.find_spec("s3fs") is None:
        raise InvalidError(
            f"pipeline root {root!r} needs the s3fs package on the control plane:"
            " pip install 'flowyard[s3]'"
        )
    return root.rstrip("/")


def mounted_path(uri: str, mount_root: str) -> str:
    """Where a remote artifact is staged: ``s3://b/k`` -> ``<mount_root>/s3/b/k``."""
    scheme, _, rest = uri.partition("://")
    return f"{mount_root.rstrip('/')}/{scheme}/{rest}"


def forwarded_env() -> dict[str, str]:
    """The storage credentials/endpoint variables set in this process's environment."""
    return {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}


def transfers(executor_input: dict[str, Any], mount_root: str) -> dict[str, list[dict[str, str]]]:
    """The remote input artifacts to download and output artifacts to upload for one attempt:
    ``{"downloads": [{name, uri, path}], "uploads": [...]}`` (both empty for a local step)."""
    plan: dict[str, list[dict[str, str]]] = {"downloads": [], "uploads": []}
    for section, key in (("inputs", "downloads"), ("outputs", "uploads")):
        arts = (executor_input.get(section) or {}).get("artifacts") or {}
        seen: set[str] = set()
        for name, art_list in arts.items():
            for art in art_list.get("artifacts") or []:
                uri = str(art.get("uri", ""))
                if is_remote(uri) and uri not in seen:
                    seen.add(uri)
                    path = mounted_path(uri, mount_root)
                    plan[key].append({"name": name, "uri": uri, "path": path})
    return plan


def shim_dir() -> str:
    """The directory holding the ``sitecustomize`` hook for kfp's mount prefixes."""
    return str(Path(__file__).parent / "kfp_mounts")


def wrap_step(
    argv: list[str],
    env: dict[str, str],
    work: Path,
    mount_root: str,
    plan: dict[str, list[dict[str, str]]],
    python: str,
) -> list[str]:
    """Write the staging manifest into ``work`` and return the wrapped argv; ``env`` gains the
    mount root, the kfp hook on ``PYTHONPATH`` and the forwarded storage variables."""
    manifest = work / MANIFEST_FILE
    manifest.write_text(json.dumps({"mountRoot": mount_root, **plan}))
    env.update(forwarded_env())
    env[MOUNT_ENV] = mount_root
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = shim_dir() + (os.pathsep + old if old else "")
    return [python, "-m", "flowyard.pipelines.stage", str(manifest), "--", *argv]
