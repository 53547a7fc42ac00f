"""Execution caching with KFP's cache-key semantics.

The fingerprint of a task attempt is the SHA-256 of the canonical JSON of KFP's ``CacheKey``:

* ``inputArtifactNames``: per input, the identities of the input artifacts (their URIs here;
  KFP uses the ML Metadata artifact names — both change exactly when a new artifact is produced);
* ``inputParameterValues``: the resolved input parameters;
* ``outputArtifactsSpec``: per output artifact its name, type and metadata (URI wiped);
* ``outputParametersSpec``: per output parameter its type;
* ``containerSpec``: image, the unresolved ``command + args``, PVC names and env.

A task's ``cachingOptions.cacheKey`` (when set) replaces the computed key. Hits are scoped per
pipeline name (and namespace), as in KFP. A hit is only used when every local output artifact it
recorded still exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from flowyard import config


def cache_key(
    executor_input: dict[str, Any],
    component: dict[str, Any],
    container: dict[str, Any],
) -> dict[str, Any]:
    """KFP's ``CacheKey`` message (as a dict) for one task attempt."""
    inputs = executor_input.get("inputs") or {}
    outputs = executor_input.get("outputs") or {}
    out_param_defs = (component.get("outputDefinitions") or {}).get("parameters") or {}
    return {
        "inputArtifactNames": {
            name: {"artifactNames": [a.get("uri", "") for a in lst.get("artifacts") or []]}
            for name, lst in (inputs.get("artifacts") or {}).items()
        },
        "inputParameterValues": dict(inputs.get("parameterValues") or {}),
        "outputArtifactsSpec": {
            name: {
                "name": (lst.get("artifacts") or [{}])[0].get("name", name),
                "type": (lst.get("artifacts") or [{}])[0].get("type", {}),
                "metadata": (lst.get("artifacts") or [{}])[0].get("metadata", {}),
            }
            for name, lst in (outputs.get("artifacts") or {}).items()
        },
        "outputParametersSpec": {
            name: spec.get("parameterType", "") for name, spec in out_param_defs.items()
        },
        "containerSpec": {
            "image": container.get("image", ""),
            "cmdArgs": [*(container.get("command") or []), *(container.get("args") or [])],
            "pvcNames": [],
            "env": container.get("env") or [],
        },
    }


def fingerprint(key: dict[str, Any], custom_key: str | None = None) -> str:
    """The SHA-256 hex digest identifying a cacheable execution."""
    text = custom_key if custom_key else json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class TaskCache:
    """File-backed cache of task outputs, ``FLOWYARD_HOME/pipelines/cache/<scope>/<fp>.json``.

    Entries are written atomically; a reader never sees a half-written entry.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or config.home() / "pipelines" / "cache"

    def _path(self, scope: str, fp: str) -> Path:
        safe_scope = "".join(c if c.isalnum() or c in "-_." else "_" for c in scope) or "_"
        return self.directory / safe_scope / f"{fp}.json"

    def get(self, scope: str, fp: str) -> dict[str, Any] | None:
        """The recorded outputs for ``fp``, or None (also when an artifact has vanished)."""
        path = self._path(scope, fp)
        try:
            entry: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        for arts in (entry.get("outputs", {}).get("artifacts") or {}).values():
            for art in arts:
                uri = str(art.get("uri", ""))
                if uri.startswith("/") and not os.path.exists(uri):
                    return None
        return entry

    def put(self, scope: str, fp: str, outputs: dict[str, Any], source: dict[str, Any]) -> None:
        path = self._path(scope, fp)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"outputs": outputs, "source": source, "created": time.time()}))
        os.replace(tmp, path)
