"""``flowyard.tune``: tune a Python function as a Katib Experiment, as ``KatibClient.tune`` does
— but the objective receives **typed** values (``int``, ``float``, ``str``), not strings.

The function travels as source (self-contained: imports inside its body, no closures), like
the Katib SDK and ``TrainerClient.train``. Each trial is a ``batch/v1 Job`` that runs
``python -c <script> name value ...`` with the trial's assignment substituted into the
arguments; the script converts each value with its parameter's type and calls
``objective(parameters)``. Metrics are collected as the experiment's collector says (default
``StdOut``: print ``loss=0.1``; ``{"kind": "Push"}``: call ``flowyard.report_metrics``). In
addition, a number returned by the objective is printed as ``<objective metric>=<value>`` and a
returned dict as ``name=value`` lines, so ``return loss`` is enough.
"""

from __future__ import annotations

import inspect
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from typing import Any

from flowyard.client import Client
from flowyard.errors import InvalidError
from flowyard.resources.conditions import get_condition
from flowyard.resources.meta import Resource, random_suffix
from flowyard.tuning.kinds import API_VERSION
from flowyard.tuning.space import SearchSpace

EXPERIMENTS = "experiments.kubeflow.org"
TRIALS = "trials.kubeflow.org"
_CONTAINER = "training-container"

_RUNNER = """
import sys as _sys
_types = {types!r}
_fixed = {fixed!r}


def _typed(kind, text):
    if kind == "int":
        return int(text)
    if kind == "double":
        return float(text)
    if kind == "discrete":
        number = float(text)
        return int(number) if number.is_integer() and "." not in text else number
    return text


_params = dict(_fixed)
_argv = _sys.argv[1:]
for _i in range(0, len(_argv), 2):
    _params[_argv[_i]] = _typed(_types[_argv[_i]], _argv[_i + 1])
_result = {name}(_params)
if isinstance(_result, dict):
    for _k, _v in _result.items():
        print(f"{{_k}}={{float(_v)!r}}", flush=True)
elif isinstance(_result, (int, float)) and not isinstance(_result, bool):
    print(f"{metric}={{float(_result)!r}}", flush=True)
"""


def _source(func: Callable[..., Any]) -> str:
    if not callable(func) or getattr(func, "__name__", "<lambda>") == "<lambda>":
        raise InvalidError("tune(objective=...): pass a function defined with def, not a lambda")
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as exc:
        raise InvalidError(
            f"tune(objective={func.__name__}): its source is not available ({exc}); "
            "define it in a file or notebook cell"
        ) from exc
    return "\n".join(line for line in source.splitlines() if not line.startswith("@"))


def objective_script(
    objective: Callable[..., Any],
    types: Mapping[str, str],
    fixed: Mapping[str, Any],
    metric: str,
) -> str:
    """The trial program: the objective's source plus the typed-argument runner."""
    for key, value in fixed.items():
        if not isinstance(value, (str, int, float, bool, type(None), list, dict)):
            raise InvalidError(
                f"tune(parameters={{{key!r}: ...}}): a fixed value must be a literal "
                f"(str, number, bool, list, dict), not {type(value).__name__}"
            )
    runner = _RUNNER.format(
        types=dict(types), fixed=dict(fixed), name=objective.__name__, metric=metric
    )
    return _source(objective) + "\n" + runner


def build_experiment(
    name: str,
    objective: Callable[..., Any],
    parameters: Mapping[str, Any],
    *,
    objective_metric_name: str,
    objective_type: str = "maximize",
    objective_goal: float | None = None,
    additional_metric_names: list[str] | None = None,
    algorithm_name: str = "random",
    algorithm_settings: Mapping[str, Any] | None = None,
    max_trial_count: int | None = None,
    parallel_trial_count: int | None = None,
    max_failed_trial_count: int | None = None,
    env_per_trial: Mapping[str, str] | None = None,
    resources_per_trial: Mapping[str, Any] | None = None,
    retain_trials: bool = False,
    metrics_collector_config: Mapping[str, Any] | None = None,
    namespace: str = "default",
) -> Resource:
    """The Experiment ``tune`` submits (see :func:`tune` for the arguments)."""
    specs: dict[str, dict[str, Any]] = {}
    fixed: dict[str, Any] = {}
    for key, value in parameters.items():
        is_spec = isinstance(value, dict) and "parameterType" in value
        if is_spec:
            specs[key] = value
        else:
            fixed[key] = value
    if not specs:
        raise InvalidError(
            "tune(parameters=...): at least one value must be a search space such as "
            "search.double(0.01, 0.1)"
        )
    types = {k: str(v["parameterType"]) for k, v in specs.items()}
    script = objective_script(objective, types, fixed, objective_metric_name)
    argv: list[str] = [sys.executable, "-u", "-c", script]
    for key in specs:
        argv += [key, "${trialParameters." + key + "}"]
    container: dict[str, Any] = {"name": _CONTAINER, "image": "flowyard-local", "command": argv}
    if env_per_trial:
        container["env"] = [{"name": k, "value": str(v)} for k, v in env_per_trial.items()]
    if resources_per_trial:
        container["resources"] = {"limits": {k: str(v) for k, v in resources_per_trial.items()}}
    objective_spec: dict[str, Any] = {
        "type": objective_type,
        "objectiveMetricName": objective_metric_name,
    }
    if objective_goal is not None:
        objective_spec["goal"] = objective_goal
    if additional_metric_names:
        objective_spec["additionalMetricNames"] = list(additional_metric_names)
    spec: dict[str, Any] = {
        "objective": objective_spec,
        "algorithm": {
            "algorithmName": algorithm_name,
            "algorithmSettings": [
                {"name": k, "value": str(v)} for k, v in (algorithm_settings or {}).items()
            ],
        },
        "parameters": [{"name": k, **v} for k, v in specs.items()],
        "metricsCollectorSpec": {"collector": dict(metrics_collector_config or {"kind": "StdOut"})},
        "trialTemplate": {
            "primaryContainerName": _CONTAINER,
            "retain": retain_trials,
            "trialParameters": [{"name": k, "reference": k} for k in specs],
            "trialSpec": {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "spec": {
                    "backoffLimit": 0,
                    "template": {"spec": {"containers": [container], "restartPolicy": "Never"}},
                },
            },
        },
    }
    for field, value in (
        ("maxTrialCount", max_trial_count),
        ("parallelTrialCount", parallel_trial_count),
        ("maxFailedTrialCount", max_failed_trial_count),
    ):
        if value is not None:
            spec[field] = int(value)
    return {
        "apiVersion": API_VERSION,
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


class TuningClient:
    """KatibClient-style calls over :class:`flowyard.Client`."""

    def __init__(self, client: Client | None = None, namespace: str = "default") -> None:
        self.client = client or Client()
        self.namespace = namespace

    def tune(self, name: str | None = None, **kwargs: Any) -> Resource:
        """Create the experiment (see :func:`flowyard.tuning.api.tune`); returns it."""
        kwargs.setdefault("namespace", self.namespace)
        objective = kwargs.pop("objective")
        parameters = kwargs.pop("parameters")
        name = name or f"tune-{random_suffix(8)}"
        return self.client.create(build_experiment(name, objective, parameters, **kwargs))

    def get_experiment(self, name: str, namespace: str | None = None) -> Resource:
        return self.client.get(EXPERIMENTS, name, namespace or self.namespace)

    def list_trials(self, name: str, namespace: str | None = None) -> list[Resource]:
        """The experiment's Trials."""
        return self.client.list(
            TRIALS,
            namespace or self.namespace,
            label_selector=f"katib.kubeflow.org/experiment={name}",
        )

    def get_optimal_hyperparameters(
        self, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        """``{"best_trial_name", "parameters" (typed), "metrics" ({name: {min, max,
        latest}} as floats)}`` from ``status.currentOptimalTrial`` (empty values until a
        trial has succeeded)."""
        exp = self.get_experiment(name, namespace)
        best = (exp.get("status") or {}).get("currentOptimalTrial") or {}
        assignments = {a["name"]: a["value"] for a in best.get("parameterAssignments") or []}
        space = SearchSpace.from_spec(exp["spec"])
        typed = space.parse(assignments) if assignments else {}
        metrics = {
            m["name"]: {k: _number(m.get(k)) for k in ("min", "max", "latest")}
            for m in (best.get("observation") or {}).get("metrics") or []
        }
        return {
            "best_trial_name": best.get("bestTrialName") or "",
            "parameters": dict(typed),
            "metrics": metrics,
        }

    def wait_for_experiment_condition(
        self,
        name: str,
        namespace: str | None = None,
        expected_condition: str = "Succeeded",
        timeout: float = 600,
        polling_interval: float = 0.2,
    ) -> Resource:
        """Block until the experiment has ``expected_condition`` True. RuntimeError if it
        Failed meanwhile (when another condition was expected), TimeoutError after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            exp = self.get_experiment(name, namespace)
            cond = get_condition(exp, expected_condition)
            if cond and cond.get("status") == "True":
                return exp
            failed = get_condition(exp, "Failed")
            if expected_condition != "Failed" and failed and failed.get("status") == "True":
                raise RuntimeError(
                    f"experiment {name} failed: {failed.get('reason')}: {failed.get('message')}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"experiment {name} did not reach {expected_condition} in {timeout}s"
                )
            time.sleep(polling_interval)


def _number(text: object) -> float | None:
    try:
        return float(str(text))
    except ValueError:
        return None


def tune(
    objective: Callable[..., Any],
    parameters: Mapping[str, Any],
    *,
    objective_metric_name: str,
    name: str | None = None,
    namespace: str = "default",
    client: Client | None = None,
    **kwargs: Any,
) -> Resource:
    """Tune ``objective(parameters: dict)`` as a Katib Experiment; returns the created one.

    ``parameters`` maps names to search spaces (:mod:`flowyard.tuning.search`) or fixed
    values (passed through unchanged). Keyword arguments as ``KatibClient.tune``:
    ``objective_type`` (default ``maximize``), ``objective_goal``,
    ``additional_metric_names``, ``algorithm_name`` (default ``random``),
    ``algorithm_settings`` (dict), ``max_trial_count``, ``parallel_trial_count``,
    ``max_failed_trial_count``, ``env_per_trial``, ``resources_per_trial`` (dict of limits),
    ``retain_trials``, ``metrics_collector_config`` (``{"kind": "StdOut"}`` or ``Push``).
    Follow it with :meth:`TuningClient.wait_for_experiment_condition` and
    :meth:`TuningClient.get_optimal_hyperparameters`.
    """
    tuner = TuningClient(client, namespace)
    return tuner.tune(
        name,
        objective=objective,
        parameters=parameters,
        objective_metric_name=objective_metric_name,
        **kwargs,
    )
