"""KFP v2 pipelines on flowyard: IR loading and validation, and the DAG engine.

* :func:`load_file`, :func:`load_yaml`, :func:`from_function` -> :class:`PipelineIR`
* :class:`PipelineRun` runs an IR through a :class:`~flowyard.executors.base.BaseExecutor`.

See ``docs/pipelines.md``.
"""

from flowyard.pipelines.engine import PipelineRun
from flowyard.pipelines.ir import PipelineIR, from_function, load_dict, load_file, load_yaml
from flowyard.pipelines.validate import resolve_run_parameters

__all__ = [
    "PipelineIR",
    "PipelineRun",
    "from_function",
    "load_dict",
    "load_file",
    "load_yaml",
    "resolve_run_parameters",
]
