"""The dataset/model initializer process: ``python -m flowyard.training.initializer --uri URI
--dest DIR`` puts what ``URI`` names into ``DIR``.

* local path (``/data/x`` or ``file:///data/x``): a directory is copied recursively, a file into
  ``DIR``;
* ``http://`` / ``https://``: downloaded into ``DIR`` under its last path segment;
* ``s3://bucket/prefix``: copied with fsspec (needs ``s3fs``; endpoint and credentials from the
  usual ``AWS_*`` variables, ``AWS_ENDPOINT_URL`` for an S3-compatible store).

Exit code 0 on success, 1 with a message on stderr otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import urllib.parse
import urllib.request
from pathlib import Path

_HTTP_TIMEOUT = 60.0
_CHUNK = 1 << 20


def fetch(uri: str, dest: Path) -> Path:
    """Put ``uri`` into ``dest``; return the path of what was written."""
    dest.mkdir(parents=True, exist_ok=True)
    if uri.startswith(("http://", "https://")):
        return _http(uri, dest)
    if uri.startswith("s3://"):
        return _s3(uri, dest)
    source = Path(urllib.parse.urlparse(uri).path if uri.startswith("file://") else uri)
    if not source.exists():
        raise FileNotFoundError(f"storageUri {uri!r}: {source} does not exist")
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return dest
    target = dest / source.name
    shutil.copy2(source, target)
    return target


def _http(uri: str, dest: Path) -> Path:
    name = Path(urllib.parse.urlparse(uri).path).name or "download"
    target = dest / name
    with urllib.request.urlopen(uri, timeout=_HTTP_TIMEOUT) as response, target.open("wb") as out:
        while chunk := response.read(_CHUNK):
            out.write(chunk)
    return target


def _s3(uri: str, dest: Path) -> Path:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    if fs.isdir(path):
        fs.get(path.rstrip("/") + "/", str(dest), recursive=True)
        return dest
    target = dest / Path(path).name
    fs.get(path, str(target))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flowyard.training.initializer")
    parser.add_argument("--uri", required=True)
    parser.add_argument("--dest", required=True)
    args = parser.parse_args(argv)
    try:
        written = fetch(args.uri, Path(args.dest))
    except Exception as exc:  # report any failure as the process's error
        print(f"initializer: {args.uri}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"initializer: {args.uri} -> {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
