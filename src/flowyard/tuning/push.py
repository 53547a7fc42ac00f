"""``report_metrics``: the Push metrics collector, for code running inside a trial.

The trial's process gets ``FLOWYARD_METRICS_FILE`` in its environment (set by the Trial
controller); each call appends one JSON line ``{"timestamp": ..., "metrics": {name: value}}``
to it with a single ``write`` on an ``O_APPEND`` descriptor, so calls from several processes of
one trial (distributed ranks) do not interleave. The controller reads the file with
:func:`flowyard.tuning.metrics.parse_pushed`.

The call shape is the Katib SDK's ``kubeflow.katib.report_metrics(metrics, db_manager_address,
timeout)``; the last two are accepted and ignored. As in the Katib SDK, a value that cannot be
converted to float, or a call outside a trial, raises ``ValueError``.

This module imports only the standard library: workload code can use it without the server's
dependencies.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from typing import Any

METRICS_FILE_ENV = "FLOWYARD_METRICS_FILE"
"""Environment variable naming the file a trial's pushed metrics are appended to."""


def report_metrics(
    metrics: dict[str, Any], db_manager_address: str | None = None, timeout: int | None = None
) -> None:
    """Record ``metrics`` (``{"loss": 0.01, "accuracy": 0.99}``) for the current trial."""
    del db_manager_address, timeout  # Katib SDK arguments; flowyard needs no DB address
    path = os.environ.get(METRICS_FILE_ENV)
    if not path:
        raise ValueError(
            f"report_metrics must run inside a flowyard trial: {METRICS_FILE_ENV} "
            "is not set (the Trial controller sets it for Push collectors)"
        )
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError("metrics must be a non-empty dict such as {'loss': 0.01}")
    values: dict[str, float] = {}
    for name, raw in metrics.items():
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(
                f"metric {name!r} has value {raw!r}, which cannot be converted to float"
            ) from None
        if not math.isfinite(value) or isinstance(raw, bool):
            raise ValueError(f"metric {name!r} has value {raw!r}; it must be a finite number")
        values[str(name)] = value
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    line = json.dumps({"timestamp": stamp, "metrics": values}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
