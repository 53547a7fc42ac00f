"""Resolving an InferenceService ``storageUri`` to a local file or directory.

* a plain path or ``file://`` URI: used in place (must exist)
* ``pvc://NAME/PATH``: ``FLOWYARD_HOME/volumes/NAME/PATH`` (a named local volume)
* ``s3://BUCKET/KEY``: downloaded with fsspec/s3fs. The endpoint comes from ``S3_ENDPOINT`` or
  ``AWS_ENDPOINT_URL`` (``S3_USE_HTTPS=0`` for plain http when the endpoint has no scheme),
  credentials from the usual ``AWS_*`` variables.
* ``http://`` / ``https://``: downloaded; ``.tar.gz``/``.tgz``/``.tar``/``.zip`` are unpacked.

Remote URIs are cached under ``FLOWYARD_HOME/models-cache/<sha256 of the URI>``: a download is
written to a temporary directory and renamed into place only when complete, so a restart (or a
second replica) finds the files and only loads. Every failure raises InvalidError (bad URI) or
NotFoundError (nothing there) naming the URI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from flowyard import config
from flowyard.errors import InvalidError, NotFoundError

_ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")
_HTTP_TIMEOUT_S = 300.0


def cache_dir() -> Path:
    path = config.home() / "models-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve(uri: str) -> Path:
    """A local path holding the model for ``uri`` (downloading into the cache if needed)."""
    if not uri or not isinstance(uri, str):
        raise InvalidError("storageUri is empty; give a path, file://, pvc://, s3:// or http(s)://")
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file"):
        path = Path(unquote(parsed.path) if scheme == "file" else uri).expanduser()
        return _existing(path, uri)
    if scheme == "pvc":
        if not parsed.netloc:
            raise InvalidError(f"storageUri {uri}: pvc:// needs a volume name (pvc://NAME/PATH)")
        base = config.home() / "volumes" / parsed.netloc
        return _existing(_inside(base, parsed.path), uri)
    if scheme in ("s3", "http", "https"):
        return _cached(uri, scheme)
    raise InvalidError(
        f"storageUri {uri}: scheme {scheme}:// is not supported; use a path, file://, pvc://, "
        f"s3:// or http(s)://"
    )


def _existing(path: Path, uri: str) -> Path:
    if not path.exists():
        raise NotFoundError(f"storageUri {uri}: {path} does not exist")
    return path


def _inside(base: Path, rel: str) -> Path:
    target = (base / rel.lstrip("/")).resolve()
    if target != base.resolve() and base.resolve() not in target.parents:
        raise InvalidError(f"path {rel} escapes volume {base.name}")
    return target


def _cached(uri: str, scheme: str) -> Path:
    final = cache_dir() / hashlib.sha256(uri.encode()).hexdigest()[:32]
    if final.is_dir():
        return final
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=cache_dir()))
    try:
        if scheme == "s3":
            _download_s3(uri, staging)
        else:
            _download_http(uri, staging)
        try:
            staging.rename(final)
        except OSError:  # another replica finished first; its copy is as good as ours
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _s3_options() -> dict[str, object]:
    endpoint = os.environ.get("S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
    client: dict[str, object] = {}
    if endpoint:
        if "://" not in endpoint:
            https = os.environ.get("S3_USE_HTTPS", "1") not in ("0", "false", "False")
            endpoint = ("https://" if https else "http://") + endpoint
        client["endpoint_url"] = endpoint
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    if region:
        client["region_name"] = region
    return {"client_kwargs": client} if client else {}


def _download_s3(uri: str, dest: Path) -> None:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec is a core dependency
        raise InvalidError(f"storageUri {uri} needs fsspec") from exc
    try:
        fs = fsspec.filesystem("s3", **_s3_options())
    except ImportError as exc:
        raise InvalidError(
            f"storageUri {uri} needs the s3fs package: pip install 'flowyard[serving]'"
        ) from exc
    path = uri[len("s3://") :].rstrip("/")
    if not fs.exists(path):
        raise NotFoundError(f"storageUri {uri}: no such object or prefix")
    if fs.isdir(path):
        for remote in fs.find(path):
            rel = PurePosixPath(remote).relative_to(path)
            local = _inside(dest, str(rel))
            local.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(remote, str(local))
    else:
        name = PurePosixPath(path).name
        fs.get_file(path, str(dest / name))
        _unpack_if_archive(dest / name, dest)
    if not any(dest.iterdir()):
        raise NotFoundError(f"storageUri {uri}: the prefix holds no files")


def _download_http(uri: str, dest: Path) -> None:
    import httpx

    name = PurePosixPath(unquote(urlparse(uri).path)).name or "model"
    target = dest / name
    try:
        with httpx.stream("GET", uri, timeout=_HTTP_TIMEOUT_S, follow_redirects=True) as resp:
            if resp.status_code == 404:
                raise NotFoundError(f"storageUri {uri}: the server answered 404")
            if resp.status_code >= 400:
                raise InvalidError(
                    f"storageUri {uri}: download failed with HTTP {resp.status_code}"
                )
            with target.open("wb") as handle:
                for chunk in resp.iter_bytes(1 << 20):
                    handle.write(chunk)
    except httpx.HTTPError as exc:
        raise InvalidError(f"storageUri {uri}: download failed: {exc}") from exc
    _unpack_if_archive(target, dest)


def _unpack_if_archive(path: Path, dest: Path) -> None:
    name = path.name.lower()
    if not name.endswith(_ARCHIVES):
        return
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    _inside(dest, member)  # refuse entries that climb out of dest
                archive.extractall(dest)
        else:
            with tarfile.open(path) as archive:
                archive.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise InvalidError(f"{path.name} is not a readable archive: {exc}") from exc
    path.unlink()
