"""Experiment defaulting, as Katib's mutating webhook (``Experiment.SetDefault``) does it."""

from __future__ import annotations

from typing import Any

from flowyard.resources.meta import Resource

DEFAULT_PARALLEL_TRIAL_COUNT = 3
DEFAULT_RESUME_POLICY = "Never"

JOB_SUCCESS = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
JOB_FAILURE = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
KUBEFLOW_JOB_SUCCESS = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
KUBEFLOW_JOB_FAILURE = JOB_FAILURE
KUBEFLOW_JOB_KINDS = ("TFJob", "PyTorchJob", "XGBoostJob", "MPIJob")
KUBEFLOW_JOB_PRIMARY_POD_LABELS = {"training.kubeflow.org/job-role": "master"}
TRAINJOB_PRIMARY_POD_LABELS = {
    "jobset.sigs.k8s.io/replicatedjob-name": "node",
    "batch.kubernetes.io/job-completion-index": "0",
}

DEFAULT_FILE_PATH = "/var/log/katib/metrics.log"
DEFAULT_TFEVENT_DIR = "/var/log/katib/tfevent/"
DEFAULT_PROMETHEUS_PATH = "/metrics"
DEFAULT_PROMETHEUS_PORT = 8080


def default_experiment(obj: Resource) -> None:
    """Fill in Katib's defaults in place (idempotent)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("parallelTrialCount", DEFAULT_PARALLEL_TRIAL_COUNT)
    if not spec.get("resumePolicy"):
        spec["resumePolicy"] = DEFAULT_RESUME_POLICY
    _default_objective(spec)
    _default_trial_template(spec)
    _default_metrics_collector(spec)
    for param in spec.get("parameters") or []:
        if isinstance(param, dict):
            space = param.setdefault("feasibleSpace", {})
            if isinstance(space, dict) and not space.get("distribution"):
                space["distribution"] = "uniform"


def _strategy_for(objective_type: object) -> str:
    return {"minimize": "min", "maximize": "max"}.get(str(objective_type), "latest")


def _default_objective(spec: dict[str, Any]) -> None:
    objective = spec.get("objective")
    if not isinstance(objective, dict):
        return
    strategies = objective.get("metricStrategies")
    if not isinstance(strategies, list):
        strategies = objective["metricStrategies"] = []
    named = {s.get("name") for s in strategies if isinstance(s, dict)}
    value = _strategy_for(objective.get("type"))
    wanted = [objective.get("objectiveMetricName"), *(objective.get("additionalMetricNames") or [])]
    for name in wanted:
        if name and name not in named:
            strategies.append({"name": name, "value": value})
            named.add(name)


def _default_trial_template(spec: dict[str, Any]) -> None:
    template = spec.get("trialTemplate")
    if not isinstance(template, dict) or not isinstance(template.get("trialSpec"), dict):
        return
    kind = template["trialSpec"].get("kind")
    if kind == "Job":
        success, failure, labels = JOB_SUCCESS, JOB_FAILURE, None
    elif kind in KUBEFLOW_JOB_KINDS:
        success, failure = KUBEFLOW_JOB_SUCCESS, KUBEFLOW_JOB_FAILURE
        labels = KUBEFLOW_JOB_PRIMARY_POD_LABELS
    elif kind == "TrainJob":
        success, failure, labels = JOB_SUCCESS, JOB_FAILURE, TRAINJOB_PRIMARY_POD_LABELS
    else:
        return
    if not template.get("successCondition"):
        template["successCondition"] = success
    if not template.get("failureCondition"):
        template["failureCondition"] = failure
    if labels and not template.get("primaryPodLabels"):
        template["primaryPodLabels"] = dict(labels)


def _default_metrics_collector(spec: dict[str, Any]) -> None:
    collector_spec = spec.get("metricsCollectorSpec")
    if not isinstance(collector_spec, dict):
        collector_spec = spec["metricsCollectorSpec"] = {}
    collector = collector_spec.get("collector")
    if not isinstance(collector, dict):
        collector = collector_spec["collector"] = {"kind": "StdOut"}
    kind = collector.get("kind")
    if kind not in ("File", "TensorFlowEvent", "PrometheusMetric"):
        return
    source = collector_spec.setdefault("source", {})
    if kind == "PrometheusMetric":
        http = source.setdefault("httpGet", {})
        _fill(http, "path", DEFAULT_PROMETHEUS_PATH)
        if not http.get("port"):
            http["port"] = DEFAULT_PROMETHEUS_PORT
        return
    path = source.setdefault("fileSystemPath", {})
    if kind == "File":
        _fill(path, "kind", "File")
        _fill(path, "path", DEFAULT_FILE_PATH)
        _fill(path, "format", "TEXT")
    else:
        _fill(path, "kind", "Directory")
        _fill(path, "path", DEFAULT_TFEVENT_DIR)


def _fill(node: dict[str, Any], key: str, value: str) -> None:
    """Set ``key`` when missing or empty (Katib tests for the zero value, not absence)."""
    if not node.get(key):
        node[key] = value
