"""Collecting a trial's metrics from where its run object's processes wrote them.

* ``StdOut``: the primary replica's log under ``FLOWYARD_HOME/logs/<ns>/<plural>/<run name>/``
  (where the executor captures each process's output): for a ``batch/v1 Job`` every attempt's
  log in start order; for training jobs the ``master-0`` (PyTorchJob, ...) or ``node-0``
  (TrainJob) replica's log, as Katib reads the primary pod's container.
* ``File``: the collector's path, remapped into the trial's directory (see
  :mod:`flowyard.tuning.runobject`), ``TEXT`` or ``JSON``.
* ``Push``: the JSON lines ``flowyard.report_metrics`` appended to ``FLOWYARD_METRICS_FILE``.
* ``TensorFlowEvent``: the scalars in the TensorBoard event files under the collector's
  directory, remapped like ``File`` (see :mod:`flowyard.tuning.tfevent`).

:func:`collect` returns every metric log in reporting order; the Trial controller turns it into
an :class:`~flowyard.tuning.metrics.Observation`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flowyard import config
from flowyard.resources.meta import Resource
from flowyard.tuning.metrics import MetricLog, parse_json_lines, parse_pushed, parse_text
from flowyard.tuning.runobject import collector_path, local_path, push_file
from flowyard.tuning.tfevent import parse_event_dir

_PRIMARY_REPLICAS = ("master-0", "node-0", "launcher-0", "chief-0")


def run_log_files(namespace: str, kind: str, name: str) -> list[Path]:
    """The primary replica's log files of a run object, oldest first."""
    directory = config.logs_dir() / namespace / f"{kind.lower()}s" / name
    if not directory.is_dir():
        return []
    for replica in _PRIMARY_REPLICAS:
        primary = directory / f"{name}-{replica}.log"
        if primary.exists():
            return [primary]
    return sorted(directory.glob("*.log"), key=lambda p: (p.stat().st_mtime_ns, p.name))


def _lines(paths: list[Path]) -> Iterator[str]:
    for path in paths:
        try:
            with path.open(errors="replace") as handle:
                yield from handle
        except FileNotFoundError:
            continue


def collect(trial: Resource, names: list[str]) -> list[MetricLog]:
    """Every value of the metrics ``names`` the trial has reported so far."""
    md = trial["metadata"]
    spec: dict[str, Any] = trial.get("spec") or {}
    collector_spec = spec.get("metricsCollector") or {}
    kind = str((collector_spec.get("collector") or {}).get("kind") or "StdOut")
    source = collector_spec.get("source") or {}
    formats = list((source.get("filter") or {}).get("metricsFormat") or [])
    if kind == "Push":
        return parse_pushed(_lines([push_file(md["namespace"], md["name"])]), names)
    if kind == "TensorFlowEvent":
        path = collector_path(trial)
        return parse_event_dir(local_path(trial, path), names) if path else []
    if kind == "File":
        path = collector_path(trial)
        if not path:
            return []
        lines = _lines([local_path(trial, path)])
        file_format = str((source.get("fileSystemPath") or {}).get("format") or "TEXT")
        if file_format == "JSON":
            try:
                return parse_json_lines(lines, names)
            except ValueError:
                return []  # a line being written; read again on the next reconcile
        return parse_text(lines, names, formats)
    run = spec.get("runSpec") or {}
    files = run_log_files(md["namespace"], str(run.get("kind") or ""), md["name"])
    return parse_text(_lines(files), names, formats)
