"""The in-step half of remote artifacts (what KFP's launcher does inside a pod).

``python -m flowyard.pipelines.stage MANIFEST -- COMMAND...`` (written by
:func:`flowyard.pipelines.remote.wrap_step`):

1. downloads every input artifact of the manifest (an object, or every object under a prefix)
   to its staged path; a missing input fails the step naming the input and its URI;
2. creates the parent directories of the staged output paths and runs ``COMMAND`` (same process
   group: the executor's kill and deadline reach it);
3. when ``COMMAND`` exits 0, uploads each staged output that exists (a file as one object, a
   directory object by object under the URI); an upload error fails the step.

The exit code is ``COMMAND``'s (``128 + n`` when a signal ended it), or 1 when a transfer fails.
Storage access uses fsspec/s3fs with the standard ``AWS_*`` variables; the endpoint is
``FLOWYARD_S3_ENDPOINT_URL``, else ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any


class TransferError(Exception):
    """An artifact could not be downloaded or uploaded (names it)."""


def s3_options() -> dict[str, Any]:
    """fsspec ``s3`` filesystem options from the environment."""
    endpoint = (
        os.environ.get("FLOWYARD_S3_ENDPOINT_URL")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    client: dict[str, Any] = {}
    if endpoint:
        client["endpoint_url"] = endpoint
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    if region:
        client["region_name"] = region
    return {"client_kwargs": client} if client else {}


def _filesystem() -> Any:
    import fsspec

    return fsspec.filesystem("s3", **s3_options())


def _key(uri: str) -> str:
    return uri.split("://", 1)[1].rstrip("/")


def download(fs: Any, item: dict[str, str]) -> None:
    key, local = _key(item["uri"]), Path(item["path"])
    try:
        if fs.isdir(key):
            for remote in fs.find(key):
                target = local / PurePosixPath(remote).relative_to(key)
                target.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(remote, str(target))
            return
        if not fs.exists(key):
            raise TransferError(f"input artifact {item['name']!r}: {item['uri']} does not exist")
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(key, str(local))
    except TransferError:
        raise
    except Exception as exc:  # botocore/s3fs raise many types; report them all by artifact
        raise TransferError(f"input artifact {item['name']!r}: {item['uri']}: {exc}") from exc


def upload(fs: Any, item: dict[str, str]) -> bool:
    """Upload one staged output; False when the step did not write it."""
    key, local = _key(item["uri"]), Path(item["path"])
    try:
        if local.is_dir():
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                fs.put_file(str(path), f"{key}/{path.relative_to(local).as_posix()}")
            return True
        if local.is_file():
            fs.put_file(str(local), key)
            return True
    except Exception as exc:  # see download()
        raise TransferError(f"output artifact {item['name']!r}: {item['uri']}: {exc}") from exc
    return False


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m flowyard.pipelines.stage MANIFEST -- COMMAND...", file=sys.stderr)
        return 2
    manifest = json.loads(Path(args[0]).read_text())
    command = args[2:]
    try:
        fs = _filesystem()
        for item in manifest.get("downloads") or []:
            download(fs, item)
            print(f"flowyard: downloaded {item['uri']}", flush=True)
    except (TransferError, ImportError) as exc:
        print(f"flowyard: {exc}", file=sys.stderr, flush=True)
        return 1
    for item in manifest.get("uploads") or []:
        Path(item["path"]).parent.mkdir(parents=True, exist_ok=True)
    code = subprocess.call(command)
    if code != 0:
        return code if code > 0 else 128 - code
    try:
        for item in manifest.get("uploads") or []:
            if upload(fs, item):
                print(f"flowyard: uploaded {item['uri']}", flush=True)
    except TransferError as exc:
        print(f"flowyard: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
