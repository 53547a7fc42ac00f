"""A Trial's run object: the resource its ``runSpec`` describes, made ready to run on this host.

Katib runs each trial in its own pods, so a metrics file path such as ``/katib/mnist.log`` is
private to the trial. Here every trial runs on one host, so the Trial controller gives each trial
its own directory (:func:`trial_dir`) and

* rewrites the File collector's path (and TensorFlowEvent directory) wherever it appears in
  the run spec's strings to a path inside that directory (so ``--log-path=/katib/mnist.log``
  writes to ``<trial dir>/files/katib/mnist.log``; the collector reads the same file);
* sets ``FLOWYARD_METRICS_FILE`` (the Push collector's file) and ``FLOWYARD_TRIAL_NAME`` in the
  environment of the primary container (every container named ``primaryContainerName``, and a
  TrainJob's ``spec.trainer``);
* labels the run object with the trial and experiment names and makes the Trial its controlling
  owner (so the run object's changes wake the Trial controller).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flowyard import config
from flowyard.resources.meta import Resource, owner_reference
from flowyard.tuning.push import METRICS_FILE_ENV

LABEL_EXPERIMENT = "katib.kubeflow.org/experiment"
LABEL_TRIAL = "katib.kubeflow.org/trial"
TRIAL_NAME_ENV = "FLOWYARD_TRIAL_NAME"


def trial_dir(namespace: str, trial_name: str) -> Path:
    """The trial's private directory (metrics files, remapped collector paths)."""
    return config.logs_dir() / namespace / "trials" / trial_name


def push_file(namespace: str, trial_name: str) -> Path:
    return trial_dir(namespace, trial_name) / "metrics.jsonl"


def collector_path(trial: Resource) -> str | None:
    """The File/TensorFlowEvent path named in the Trial's metrics collector spec."""
    collector = (trial.get("spec") or {}).get("metricsCollector") or {}
    path = ((collector.get("source") or {}).get("fileSystemPath") or {}).get("path")
    return str(path) if path else None


def local_path(trial: Resource, path: str) -> Path:
    """Where the trial's ``path`` (an absolute path in Katib's pod) lives on this host."""
    md = trial["metadata"]
    return trial_dir(md["namespace"], md["name"]) / "files" / path.lstrip("/")


def _strings(node: Any, replace: Callable[[str], str]) -> Any:
    if isinstance(node, str):
        return replace(node)
    if isinstance(node, list):
        return [_strings(item, replace) for item in node]
    if isinstance(node, dict):
        return {k: _strings(v, replace) for k, v in node.items()}
    return node


def _set_env(env: list[dict[str, Any]], values: Mapping[str, str]) -> list[dict[str, Any]]:
    kept = [e for e in env if isinstance(e, dict) and e.get("name") not in values]
    return kept + [{"name": k, "value": v} for k, v in values.items()]


def _inject(node: Any, primary: str, values: Mapping[str, str]) -> None:
    """Add ``values`` to the env of every container called ``primary`` under ``node``."""
    if isinstance(node, list):
        for item in node:
            _inject(item, primary, values)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "containers" and isinstance(value, list):
            for container in value:
                if isinstance(container, dict) and container.get("name") == primary:
                    container["env"] = _set_env(container.get("env") or [], values)
        else:
            _inject(value, primary, values)


def build_run_object(trial: Resource) -> Resource:
    """The run object for ``trial`` (from ``spec.runSpec``), ready to be admitted and created."""
    md = trial["metadata"]
    spec = trial.get("spec") or {}
    run: dict[str, Any] = copy.deepcopy(dict(spec.get("runSpec") or {}))
    path = collector_path(trial)
    if path:
        target = str(local_path(trial, path))
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        run = _strings(run, lambda text: text.replace(path, target))
    tdir = trial_dir(md["namespace"], md["name"])
    tdir.mkdir(parents=True, exist_ok=True)
    values = {METRICS_FILE_ENV: str(tdir / "metrics.jsonl"), TRIAL_NAME_ENV: str(md["name"])}
    _inject(run.get("spec"), str(spec.get("primaryContainerName") or ""), values)
    trainer = (run.get("spec") or {}).get("trainer")
    if run.get("kind") == "TrainJob" and isinstance(trainer, dict):
        trainer["env"] = _set_env(trainer.get("env") or [], values)
    run_md = run.setdefault("metadata", {})
    run_md["name"], run_md["namespace"] = md["name"], md["namespace"]
    labels = run_md.setdefault("labels", {})
    labels[LABEL_TRIAL] = md["name"]
    experiment = (md.get("labels") or {}).get(LABEL_EXPERIMENT)
    if experiment:
        labels[LABEL_EXPERIMENT] = experiment
    run_md["ownerReferences"] = [owner_reference(trial)]
    return run
