"""Points kfp's ``/s3/`` artifact mount prefix at a step's staging directory.

flowyard puts this directory first on ``PYTHONPATH`` of a step whose artifacts live in ``s3://``
storage (see ``flowyard.pipelines.remote``), with ``FLOWYARD_KFP_MOUNT_ROOT`` set to the step's
staging directory. kfp's SDK derives ``Artifact.path`` from ``.uri`` by prefix (``s3://b/k`` ->
``/s3/b/k``, where KFP's launcher would have mounted the files in a pod); this hook rewrites the
prefix to ``$FLOWYARD_KFP_MOUNT_ROOT/s3/`` when ``kfp.dsl.types.artifact_types`` is imported, so
``.path`` is the staged local file and ``.uri`` stays the ``s3://`` URI.

It imports nothing from kfp itself (no cost for processes that never import kfp) and must not
import flowyard: the step's interpreter may be another Python. A ``sitecustomize`` further down
``sys.path`` (one this file shadows) is still executed.
"""

import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

_TARGET = "kfp.dsl.types.artifact_types"
_ROOT = os.environ.get("FLOWYARD_KFP_MOUNT_ROOT", "").rstrip("/")


def _patch(module: ModuleType) -> None:
    if hasattr(module, "_S3_LOCAL_MOUNT_PREFIX"):
        module._S3_LOCAL_MOUNT_PREFIX = f"{_ROOT}/s3/"  # type: ignore[attr-defined]


class _MountFinder:
    """A meta-path finder that only wraps the loading of kfp's artifact types module."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        original = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            _patch(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _run_shadowed_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except Exception as exc:  # site.py would only warn about a broken sitecustomize, too
        print(f"Error in shadowed sitecustomize: {exc!r}", file=sys.stderr)


if _ROOT:
    sys.meta_path.insert(0, _MountFinder())
_run_shadowed_sitecustomize()
