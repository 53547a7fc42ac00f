"""Pipeline packages as KFP accepts them: a YAML/JSON file, or a ``.zip``/``.tar.gz`` archive
holding exactly one ``*.yaml``/``*.yml``/``*.json`` pipeline file; or the same fetched from a URL.

:func:`read_package` returns the IR document and the optional platform-spec document, both
validated by the pipeline loader, or raises BadRequestError/InvalidError naming the problem.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from typing import Any

import httpx
import yaml

from flowyard.errors import BadRequestError, InvalidError, TooLargeError
from flowyard.pipelines.ir import load_dict

MAX_PACKAGE_BYTES = 32 * 1024 * 1024  # KFP's upload limit
_SPEC_SUFFIXES = (".yaml", ".yml", ".json")
URL_TIMEOUT_SECONDS = 30.0


def _from_archive(data: bytes, filename: str) -> bytes:
    members: dict[str, bytes] = {}
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if not info.is_dir() and info.filename.endswith(_SPEC_SUFFIXES):
                    members[info.filename] = archive.read(info)
    else:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
                for member in archive.getmembers():
                    if member.isfile() and member.name.endswith(_SPEC_SUFFIXES):
                        handle = archive.extractfile(member)
                        if handle is not None:
                            members[member.name] = handle.read()
        except tarfile.TarError as exc:
            raise BadRequestError(f"{filename}: not a valid tar archive: {exc}") from None
    if len(members) != 1:
        raise BadRequestError(
            f"{filename}: the archive must hold exactly one pipeline file "
            f"(*.yaml, *.yml or *.json); found {len(members)}: {', '.join(sorted(members))}"
        )
    return next(iter(members.values()))


def _is_archive(data: bytes, filename: str) -> bool:
    return (
        data[:4] == b"PK\x03\x04"
        or data[:2] == b"\x1f\x8b"
        or filename.endswith((".zip", ".tar.gz", ".tgz", ".tar"))
    )


def read_package(data: bytes, filename: str = "pipeline") -> tuple[dict[str, Any], dict[str, Any]]:
    """(pipeline spec, platform spec or {}) of a package's bytes."""
    if len(data) > MAX_PACKAGE_BYTES:
        raise TooLargeError(f"{filename}: the package is larger than 32 MiB")
    if not data.strip():
        raise BadRequestError(f"{filename}: the uploaded file is empty")
    if _is_archive(data, filename):
        data = _from_archive(data, filename)
    try:
        docs = [d for d in yaml.safe_load_all(data.decode("utf-8")) if d is not None]
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadRequestError(
            f"{filename}: not a valid pipeline package: invalid YAML: {exc}"
        ) from None
    if not docs or not all(isinstance(d, dict) for d in docs):
        raise BadRequestError(f"{filename}: not a valid pipeline package: expected a YAML mapping")
    return split_docs(docs, filename)


def split_docs(docs: list[dict[str, Any]], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate pipeline documents; (pipeline spec, platform spec or {})."""
    try:
        ir = load_dict(docs, source=source)
    except InvalidError as exc:
        raise InvalidError(f"invalid pipeline spec: {exc}", causes=exc.causes) from None
    return ir.spec, ir.platform


def fetch_package(url: str) -> tuple[bytes, str]:
    """The bytes at ``url`` (http/https), bounded in size and time."""
    if not url.startswith(("http://", "https://")):
        raise BadRequestError(f"package_url {url!r}: only http:// and https:// URLs are supported")
    chunks: list[bytes] = []
    size = 0
    try:
        with httpx.stream("GET", url, timeout=URL_TIMEOUT_SECONDS, follow_redirects=True) as resp:
            if resp.status_code != 200:
                raise BadRequestError(
                    f"package_url {url!r}: the server answered HTTP {resp.status_code}"
                )
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > MAX_PACKAGE_BYTES:
                    raise TooLargeError(f"package_url {url!r}: the package is larger than 32 MiB")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise BadRequestError(f"package_url {url!r}: cannot download: {exc}") from None
    return b"".join(chunks), url.rsplit("/", 1)[-1].split("?")[0] or "pipeline"
