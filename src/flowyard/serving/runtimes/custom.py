"""Custom models: a Python class given as ``module:Class`` with KServe's method names.

The model directory is put first on ``sys.path``, so ``model:MyModel`` finds ``model.py`` next
to the model files. The class is called with the model name; ``model_dir`` is set as an
attribute before ``load()`` when the class does not define one. Classes that subclass
``kserve.Model`` work when the ``kserve`` package is installed (they get the same payloads).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from flowyard.errors import InvalidError


def create_custom_model(spec: str, name: str, model_dir: str) -> Any:
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise InvalidError(f"model class {spec!r} must look like module:Class")
    if model_dir and model_dir not in sys.path:
        sys.path.insert(0, model_dir)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise InvalidError(f"cannot import module {module_name!r} for {spec}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise InvalidError(f"module {module_name} has no class {class_name}")
    if not callable(getattr(cls, "predict", None)):
        raise InvalidError(f"class {spec} has no predict method")
    model = cls(name)
    if getattr(model, "model_dir", None) is None:
        model.model_dir = model_dir
    if not hasattr(model, "ready"):
        model.ready = False
    return model
