"""Metrics collection: parsing trial output into metric logs, and the Trial's observation.

Collectors (``spec.metricsCollectorSpec.collector.kind``):

* ``StdOut`` and ``File`` with ``format: TEXT`` — :func:`parse_text`: every line that contains a
  metric name is matched against the filters (``source.filter.metricsFormat``, default
  :data:`DEFAULT_FILTER`: ``loss=0.3``, ``accuracy=.98``, ``Score=-7.53e-05``); group 1 is the
  name, group 2 the value. A line may start with an RFC 3339 timestamp.
* ``File`` with ``format: JSON`` — :func:`parse_json_lines`: one JSON object per line, metric
  names as keys. Katib accepts only string values there; numbers are accepted too.
* ``Push`` — :func:`parse_pushed`: the JSON lines :func:`flowyard.tuning.push.report_metrics`
  appends.

:class:`Observation` keeps min/max/latest per metric and writes Katib's
``status.observation``; when the objective metric never appeared, the objective's values are
``"unavailable"`` (Katib's marker) and the Trial is ``MetricsUnavailable``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flowyard.errors import FieldCause

DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
"""Katib's default metrics filter (``DefaultFilter`` in its metrics collector)."""

UNAVAILABLE = "unavailable"
"""Katib's value for a metric that was never reported."""

_TWO_GROUPS = re.compile(r".*\(.*\).*\(.*\).*")  # Katib's check on custom metricsFormat


@dataclass(frozen=True)
class MetricLog:
    """One reported value."""

    name: str
    value: float
    timestamp: str = ""


def compile_filters(formats: Sequence[str] = ()) -> list[re.Pattern[str]]:
    """The filters to apply (the default when ``formats`` is empty)."""
    return [re.compile(f) for f in (formats or [DEFAULT_FILTER])]


def metrics_format_causes(formats: object) -> list[FieldCause]:
    """Admission check of ``source.filter.metricsFormat``: each entry must compile and have two
    top subexpressions (metric name, metric value)."""
    path = "spec.metricsCollectorSpec.source.filter.metricsFormat"
    causes: list[FieldCause] = []
    for index, fmt in enumerate(formats if isinstance(formats, list) else []):
        try:
            pattern = re.compile(str(fmt))
        except re.error as exc:
            causes.append(
                FieldCause(
                    f"{path}[{index}]",
                    f"Invalid value: {fmt!r}: not a valid regular expression: {exc}",
                )
            )
            continue
        if pattern.groups < 2 or not _TWO_GROUPS.match(str(fmt)):
            causes.append(
                FieldCause(
                    f"{path}[{index}]",
                    f"Invalid value: {fmt!r}: two top "
                    "subexpressions are required (metric name, metric value)",
                )
            )
    return causes


def _float(text: object) -> float | None:
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _line_timestamp(line: str) -> str:
    head = line.split(" ", 1)[0]
    try:
        datetime.fromisoformat(head.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return head if "T" in head else ""


def parse_text(
    lines: Iterable[str], metric_names: Sequence[str], formats: Sequence[str] = ()
) -> list[MetricLog]:
    """Metric logs from text output (StdOut and File/TEXT collectors), in output order."""
    filters = compile_filters(formats)
    wanted = set(metric_names)
    logs: list[MetricLog] = []
    for line in lines:
        if not any(name in line for name in wanted):
            continue  # as Katib: only lines naming a metric are matched
        stamp = _line_timestamp(line)
        for pattern in filters:
            for match in pattern.finditer(line):
                if pattern.groups < 2:
                    continue
                name, value = (match.group(1) or "").strip(), _float(match.group(2) or "")
                if name in wanted and value is not None:
                    logs.append(MetricLog(name, value, stamp))
    return logs


def parse_json_lines(lines: Iterable[str], metric_names: Sequence[str]) -> list[MetricLog]:
    """Metric logs from a JSON-lines file (File/JSON collector). ValueError on a line that is
    not a JSON object, naming its line number."""
    logs: list[MetricLog] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"metrics file line {number} is not JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise ValueError(f"metrics file line {number} is not a JSON object")
        stamp = str(obj.get("timestamp") or "")
        for name in metric_names:
            value = _float(obj[name]) if name in obj and not isinstance(obj[name], bool) else None
            if value is not None:
                logs.append(MetricLog(name, value, stamp))
    return logs


def parse_pushed(lines: Iterable[str], metric_names: Sequence[str] = ()) -> list[MetricLog]:
    """Metric logs from the push file (``{"timestamp": ..., "metrics": {...}}`` per line).
    With ``metric_names`` empty every metric is kept. Lines cut short by a crash are skipped."""
    wanted = set(metric_names)
    logs: list[MetricLog] = []
    for line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("metrics"), dict):
            continue
        for name, raw in obj["metrics"].items():
            value = _float(raw)
            if value is not None and (not wanted or name in wanted):
                logs.append(MetricLog(str(name), value, str(obj.get("timestamp") or "")))
    return logs


@dataclass
class MetricSummary:
    min: float
    max: float
    latest: float
    count: int = 1

    def add(self, value: float) -> None:
        self.min, self.max, self.latest = min(self.min, value), max(self.max, value), value
        self.count += 1


def _fmt(value: float) -> str:
    return repr(float(value))


@dataclass
class Observation:
    """min/max/latest of every metric seen, in first-seen order."""

    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def of(cls, logs: Iterable[MetricLog]) -> Observation:
        obs = cls()
        for log in logs:
            obs.add(log)
        return obs

    def add(self, log: MetricLog) -> None:
        summary = self.metrics.get(log.name)
        if summary is None:
            self.metrics[log.name] = MetricSummary(log.value, log.value, log.value)
        else:
            summary.add(log.value)
        self.history.setdefault(log.name, []).append(log.value)

    def has(self, name: str) -> bool:
        return name in self.metrics

    def value(self, name: str, strategy: str = "latest") -> float | None:
        """The metric extracted with Katib's strategy (``min``, ``max`` or ``latest``)."""
        summary = self.metrics.get(name)
        if summary is None:
            return None
        return {"min": summary.min, "max": summary.max}.get(strategy, summary.latest)

    def to_status(self, metric_names: Sequence[str]) -> dict[str, Any]:
        """Katib's ``status.observation``: ``{"metrics": [{name, min, max, latest}]}``; a
        metric never seen gets ``"unavailable"`` values."""
        metrics = []
        for name in metric_names:
            summary = self.metrics.get(name)
            if summary is None:
                metrics.append(
                    {"name": name, "min": UNAVAILABLE, "max": UNAVAILABLE, "latest": UNAVAILABLE}
                )
            else:
                metrics.append(
                    {
                        "name": name,
                        "min": _fmt(summary.min),
                        "max": _fmt(summary.max),
                        "latest": _fmt(summary.latest),
                    }
                )
        return {"metrics": metrics}


def strategies(spec: Mapping[str, Any]) -> dict[str, str]:
    """``{metric: min|max|latest}`` from the (defaulted) ``spec.objective.metricStrategies``."""
    objective = spec.get("objective") or {}
    return {
        str(s.get("name")): str(s.get("value") or "latest")
        for s in objective.get("metricStrategies") or []
        if isinstance(s, dict)
    }


def metric_names(spec: Mapping[str, Any]) -> list[str]:
    """The objective metric first, then ``additionalMetricNames``."""
    objective = spec.get("objective") or {}
    names = [str(objective.get("objectiveMetricName") or "")]
    names += [str(n) for n in objective.get("additionalMetricNames") or [] if n not in names]
    return names


def objective_from_status(
    observation: Mapping[str, Any] | None, name: str, strategy: str = "latest"
) -> float | None:
    """The objective value stored in a Trial's ``status.observation`` (None if unavailable)."""
    for metric in (observation or {}).get("metrics") or []:
        if isinstance(metric, dict) and metric.get("name") == name:
            return _float(metric.get(strategy if strategy in ("min", "max") else "latest"))
    return None
