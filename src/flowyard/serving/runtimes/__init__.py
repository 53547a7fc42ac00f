"""Built-in model runtimes and the registry that picks one by name.

``create_model(runtime, name, model_dir)`` returns an unloaded model; ``load()`` reads the files.
Heavy libraries are imported only by the runtime that needs them, so a server for an sklearn
model never imports torch. A missing library or model file raises InvalidError naming the
runtime, the file it looked for and the fix.
"""

from __future__ import annotations

import importlib

from flowyard.errors import InvalidError
from flowyard.serving.model import Model

# runtime name -> (module, class, pip package that provides the library)
RUNTIMES: dict[str, tuple[str, str, str]] = {
    "sklearn": ("flowyard.serving.runtimes.sklearn", "SKLearnModel", "scikit-learn"),
    "xgboost": ("flowyard.serving.runtimes.xgboost", "XGBoostModel", "xgboost-cpu"),
    "lightgbm": ("flowyard.serving.runtimes.lightgbm", "LightGBMModel", "lightgbm"),
    "onnx": ("flowyard.serving.runtimes.onnx", "ONNXModel", "onnxruntime"),
    "pytorch": ("flowyard.serving.runtimes.pytorch", "TorchScriptModel", "torch==2.13.0"),
}


def create_model(runtime: str, name: str, model_dir: str, model_class: str | None = None) -> Model:
    """An unloaded model for ``runtime`` (``custom`` needs ``model_class`` = ``module:Class``)."""
    if runtime == "custom":
        from flowyard.serving.runtimes.custom import create_custom_model

        if not model_class:
            raise InvalidError("runtime custom needs --model-class module:Class")
        custom: Model = create_custom_model(model_class, name, model_dir)
        return custom
    if runtime not in RUNTIMES:
        raise InvalidError(
            f"runtime {runtime!r} is not supported; use one of "
            f"{', '.join([*sorted(RUNTIMES), 'custom'])}"
        )
    module_name, class_name, package = RUNTIMES[runtime]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidError(
            f"runtime {runtime} needs the {package} package ({exc}); install it with "
            f"pip install 'flowyard[serving]'"
        ) from exc
    cls = getattr(module, class_name)
    model: Model = cls(name, model_dir)
    return model
