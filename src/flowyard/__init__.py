"""flowyard: Kubeflow without the cluster.

The names below load lazily, so ``import flowyard`` stays cheap inside workload processes
(a trial calling ``flowyard.report_metrics`` does not import the client or the server).
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {  # name -> (module, attribute; None for the module itself)
    "Client": ("flowyard.client", "Client"),
    "report_metrics": ("flowyard.tuning.push", "report_metrics"),
    "tune": ("flowyard.tuning.api", "tune"),
    "search": ("flowyard.tuning.search", None),
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'flowyard' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    loaded = import_module(module)
    return loaded if attribute is None else getattr(loaded, attribute)
