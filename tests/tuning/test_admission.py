"""Katib kinds: registration, schema, defaulting and semantic validation at apply time."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flowyard.errors import InvalidError, NotFoundError
from flowyard.resources.admission import admit
from flowyard.resources.registry import KindRegistry
from flowyard.tuning import defaults
from flowyard.tuning.kinds import register_kinds

from .conftest import EXAMPLE_FILES, load_example


def rejected(
    registry: KindRegistry, obj: dict[str, Any], old: dict[str, Any] | None = None
) -> dict[str, str]:
    """Admit ``obj`` expecting InvalidError; return {field: message} of its causes."""
    with pytest.raises(InvalidError) as info:
        admit(obj, old, registry)
    return {c.field: c.message for c in info.value.causes}


def test_register_kinds_is_idempotent_and_exposes_katib_names() -> None:
    reg = KindRegistry()
    first = register_kinds(reg)
    second = register_kinds(reg)
    assert first == second
    exp = reg.resolve("experiments.kubeflow.org")
    assert (exp.kind, exp.plural, exp.short_names) == ("Experiment", "experiments", ())
    assert reg.resolve("trial").kind == "Trial"
    assert [c.name for c in reg.resolve("suggestions").columns] == [
        "Type",
        "Status",
        "Requested",
        "Assigned",
        "Age",
    ]
    assert len(exp.defaulters) == 1 and len(exp.validators) == 1


def test_kinds_not_registered_by_resources_import() -> None:
    from flowyard.resources.registry import REGISTRY

    fresh = KindRegistry()
    with pytest.raises(NotFoundError):
        fresh.get("kubeflow.org/v1beta1", "Experiment")
    assert REGISTRY is not fresh


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_every_katib_example_is_admitted(registry: KindRegistry, path: Any) -> None:
    obj = load_example(path)
    info = admit(obj, None, registry)
    assert info.kind == "Experiment"
    spec = obj["spec"]
    assert spec["resumePolicy"] == "Never"
    assert spec["metricsCollectorSpec"]["collector"]["kind"] in ("StdOut", "File")
    assert all(p["feasibleSpace"]["distribution"] for p in spec["parameters"])
    assert spec["trialTemplate"]["successCondition"]
    # admitting the defaulted object again changes nothing (defaulting is idempotent)
    again = copy.deepcopy(obj)
    admit(again, None, registry)
    assert again == obj


def test_defaults_match_katib(registry: KindRegistry, random_example: dict[str, Any]) -> None:
    spec = random_example["spec"]
    del spec["parallelTrialCount"]
    spec["objective"]["additionalMetricNames"] = ["accuracy"]
    admit(random_example, None, registry)
    assert spec["parallelTrialCount"] == 3
    assert spec["objective"]["metricStrategies"] == [
        {"name": "loss", "value": "min"},
        {"name": "accuracy", "value": "min"},
    ]
    assert spec["metricsCollectorSpec"] == {"collector": {"kind": "StdOut"}}
    template = spec["trialTemplate"]
    assert template["successCondition"] == defaults.JOB_SUCCESS
    assert template["failureCondition"] == defaults.JOB_FAILURE
    assert "primaryPodLabels" not in template


def test_defaults_for_kubeflow_jobs_and_file_collector(
    examples: dict[str, Any], registry: KindRegistry
) -> None:
    pytorch = copy.deepcopy(examples["pytorchjob-mnist"])
    admit(pytorch, None, registry)
    template = pytorch["spec"]["trialTemplate"]
    assert template["successCondition"] == defaults.KUBEFLOW_JOB_SUCCESS
    assert template["primaryPodLabels"] == {"training.kubeflow.org/job-role": "master"}
    trainjob = copy.deepcopy(examples["trainjob-pytorch"])
    admit(trainjob, None, registry)
    assert (
        trainjob["spec"]["trialTemplate"]["primaryPodLabels"]
        == defaults.TRAINJOB_PRIMARY_POD_LABELS
    )
    exp = copy.deepcopy(examples["random"])
    exp["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "File"}}
    admit(exp, None, registry)
    assert exp["spec"]["metricsCollectorSpec"]["source"]["fileSystemPath"] == {
        "kind": "File",
        "path": "/var/log/katib/metrics.log",
        "format": "TEXT",
    }


def _param(spec: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return spec["parameters"][index]["feasibleSpace"]  # type: ignore[no-any-return]


BAD_CASES: list[tuple[str, Any, str]] = [
    (
        "log distribution with min 0",
        lambda s: _param(s).update(min="0", distribution="logUniform"),
        "spec.parameters[0].feasibleSpace.min",
    ),
    (
        "logNormal with negative min",
        lambda s: _param(s, 1).update(min="-1", distribution="logNormal"),
        "spec.parameters[1].feasibleSpace.min",
    ),
    (
        "unknown distribution",
        lambda s: _param(s).update(distribution="gaussian"),
        "spec.parameters[0].feasibleSpace.distribution",
    ),
    (
        "unknown parameter type",
        lambda s: s["parameters"][0].update(parameterType="float"),
        "spec.parameters[0].parameterType",
    ),
    (
        "min above max",
        lambda s: _param(s).update(min="0.9", max="0.1"),
        "spec.parameters[0].feasibleSpace.max",
    ),
    (
        "non-numeric min",
        lambda s: _param(s).update(min="small"),
        "spec.parameters[0].feasibleSpace.min",
    ),
    (
        "int with fractional bound",
        lambda s: s["parameters"][0].update(
            parameterType="int", feasibleSpace={"min": "1", "max": "2.5"}
        ),
        "spec.parameters[0].feasibleSpace.max",
    ),
    (
        "negative step",
        lambda s: _param(s).update(step="-0.1"),
        "spec.parameters[0].feasibleSpace.step",
    ),
    (
        "double with list",
        lambda s: _param(s).update(list=["1", "2"]),
        "spec.parameters[0].feasibleSpace.list",
    ),
    (
        "categorical with min",
        lambda s: s["parameters"][0].update(
            parameterType="categorical", feasibleSpace={"list": ["a"], "min": "1"}
        ),
        "spec.parameters[0].feasibleSpace.min",
    ),
    (
        "categorical without list",
        lambda s: s["parameters"][0].update(
            parameterType="categorical", feasibleSpace={"distribution": "uniform"}
        ),
        "spec.parameters[0].feasibleSpace",
    ),
    (
        "discrete with non-number",
        lambda s: s["parameters"][0].update(
            parameterType="discrete", feasibleSpace={"list": ["1", "x"]}
        ),
        "spec.parameters[0].feasibleSpace.list[1]",
    ),
    (
        "duplicate parameter name",
        lambda s: s["parameters"][1].update(name="lr"),
        "spec.parameters[1].name",
    ),
    ("no parameters", lambda s: s.update(parameters=[]), "spec.parameters"),
    (
        "unknown algorithm",
        lambda s: s["algorithm"].update(algorithmName="annealing"),
        "spec.algorithm.algorithmName",
    ),
    (
        "grid without steps",
        lambda s: s["algorithm"].update(algorithmName="grid"),
        "spec.parameters[0].feasibleSpace.step",
    ),
    (
        "unknown algorithm setting",
        lambda s: s["algorithm"].update(algorithmSettings=[{"name": "random_stat", "value": "1"}]),
        "spec.algorithm.algorithmSettings[0].name",
    ),
    (
        "bad algorithm setting value",
        lambda s: s["algorithm"].update(
            algorithmName="tpe", algorithmSettings=[{"name": "gamma", "value": "1.5"}]
        ),
        "spec.algorithm.algorithmSettings[0].value",
    ),
    (
        "cmaes with one continuous parameter",
        lambda s: (
            s["algorithm"].update(algorithmName="cmaes"),
            s["parameters"].pop(),
            s["trialTemplate"]["trialParameters"].pop(),
            s["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0][
                "command"
            ].pop(),
        ),
        "spec.algorithm.algorithmName",
    ),
    (
        "hyperband without r_l",
        lambda s: s["algorithm"].update(
            algorithmName="hyperband", algorithmSettings=[{"name": "resource_name", "value": "lr"}]
        ),
        "spec.algorithm.algorithmSettings",
    ),
    (
        "pbt with small population",
        lambda s: s["algorithm"].update(
            algorithmName="pbt",
            algorithmSettings=[
                {"name": "suggestion_trial_dir", "value": "/tmp/x"},
                {"name": "n_population", "value": "4"},
                {"name": "truncation_threshold", "value": "0.2"},
            ],
        ),
        "spec.algorithm.algorithmSettings[1].value",
    ),
    (
        "bad metricsFormat regex",
        lambda s: s.update(
            metricsCollectorSpec={
                "collector": {"kind": "StdOut"},
                "source": {"filter": {"metricsFormat": ["([a-z]+=(\\d+"]}},
            }
        ),
        "spec.metricsCollectorSpec.source.filter.metricsFormat[0]",
    ),
    (
        "metricsFormat with one group",
        lambda s: s.update(
            metricsCollectorSpec={
                "collector": {"kind": "StdOut"},
                "source": {"filter": {"metricsFormat": ["loss=(\\d+)"]}},
            }
        ),
        "spec.metricsCollectorSpec.source.filter.metricsFormat[0]",
    ),
    (
        "relative metrics file path",
        lambda s: s.update(
            metricsCollectorSpec={
                "collector": {"kind": "File"},
                "source": {"fileSystemPath": {"kind": "File", "path": "metrics.log"}},
            }
        ),
        "spec.metricsCollectorSpec.source.fileSystemPath.path",
    ),
    (
        "unsupported collector",
        lambda s: s.update(metricsCollectorSpec={"collector": {"kind": "Custom"}}),
        "spec.metricsCollectorSpec.collector.kind",
    ),
    (
        "maxFailedTrialCount above maxTrialCount",
        lambda s: s.update(maxFailedTrialCount=13),
        "spec.maxFailedTrialCount",
    ),
    (
        "parallelTrialCount above maxTrialCount",
        lambda s: s.update(parallelTrialCount=13),
        "spec.parallelTrialCount",
    ),
    ("zero maxTrialCount", lambda s: s.update(maxTrialCount=0), "spec.maxTrialCount"),
    ("bad objective type", lambda s: s["objective"].update(type="minimise"), "spec.objective.type"),
    (
        "objective in additional metrics",
        lambda s: s["objective"].update(additionalMetricNames=["loss"]),
        "spec.objective.additionalMetricNames",
    ),
    ("unknown resume policy", lambda s: s.update(resumePolicy="Sometimes"), "spec.resumePolicy"),
    (
        "unknown early stopping",
        lambda s: s.update(earlyStopping={"algorithmName": "median"}),
        "spec.earlyStopping.algorithmName",
    ),
    (
        "bad medianstop setting",
        lambda s: s.update(
            earlyStopping={
                "algorithmName": "medianstop",
                "algorithmSettings": [{"name": "start_step", "value": "0"}],
            }
        ),
        "spec.earlyStopping.algorithmSettings[0].value",
    ),
    (
        "trial parameter referencing nothing",
        lambda s: s["trialTemplate"]["trialParameters"][0].update(reference="learning_rate"),
        "spec.trialTemplate.trialParameters[0].reference",
    ),
    (
        "placeholder without trial parameter",
        lambda s: s["trialTemplate"]["trialParameters"].pop(),
        "spec.trialTemplate.trialSpec",
    ),
    (
        "trial template with a name",
        lambda s: s["trialTemplate"]["trialSpec"].update(metadata={"name": "fixed"}),
        "spec.trialTemplate.trialSpec.metadata",
    ),
    (
        "missing primary container",
        lambda s: s["trialTemplate"].pop("primaryContainerName"),
        "spec.trialTemplate.primaryContainerName",
    ),
    (
        "NAS config",
        lambda s: s.update(nasConfig={"graphConfig": {"numLayers": 2}}),
        "spec.nasConfig",
    ),
    (
        "schema: number where Katib wants a string",
        lambda s: _param(s).update(min=0.01),
        "spec.parameters[0].feasibleSpace.min",
    ),
    ("schema: misspelt field", lambda s: s.update(maxTrialCounts=3), "spec"),
]


@pytest.mark.parametrize(("case", "mutate", "field"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_experiment_rejected_naming_the_field(
    registry: KindRegistry, random_example: dict[str, Any], case: str, mutate: Any, field: str
) -> None:
    mutate(random_example["spec"])
    causes = rejected(registry, random_example)
    assert field in causes, f"{case}: expected a cause for {field}, got {causes}"


def test_bad_name_rejected(registry: KindRegistry, random_example: dict[str, Any]) -> None:
    random_example["metadata"]["name"] = "a" * 41
    assert "metadata.name" in rejected(registry, random_example)


def test_grid_with_more_trials_than_points_rejected(
    examples: dict[str, Any], registry: KindRegistry
) -> None:
    grid = copy.deepcopy(examples["grid"])
    grid["spec"]["maxTrialCount"] = 46  # 9 x 5 = 45 points
    assert "spec.maxTrialCount" in rejected(registry, grid)


def test_hyperband_needs_enough_parallel_trials(
    examples: dict[str, Any], registry: KindRegistry
) -> None:
    hb = copy.deepcopy(examples["hyperband"])
    hb["spec"]["algorithm"]["algorithmSettings"][2]["value"] = "4"  # r_l=4, eta=2: 4 at once
    hb["spec"]["maxTrialCount"] = 10
    assert "spec.parallelTrialCount" in rejected(registry, hb)


def _stored(registry: KindRegistry, obj: dict[str, Any]) -> dict[str, Any]:
    admit(obj, None, registry)
    return copy.deepcopy(obj)


def test_only_budget_fields_are_editable(
    registry: KindRegistry, random_example: dict[str, Any]
) -> None:
    old = _stored(registry, random_example)
    new = copy.deepcopy(old)
    new["spec"]["maxTrialCount"] = 20
    new["spec"]["parallelTrialCount"] = 4
    admit(new, old, registry)
    new["spec"]["algorithm"]["algorithmName"] = "tpe"
    causes = rejected(registry, new, old)
    assert "spec" in causes and "spec.algorithm" in causes["spec"]


def _finished(old: dict[str, Any], reason: str, policy: str) -> dict[str, Any]:
    old["spec"]["resumePolicy"] = policy
    old["status"] = {
        "trials": 12,
        "conditions": [{"type": "Succeeded", "status": "True", "reason": reason}],
    }
    return old


def test_restart_follows_resume_policy(
    registry: KindRegistry, random_example: dict[str, Any]
) -> None:
    stored = _stored(registry, random_example)
    never = _finished(copy.deepcopy(stored), "ExperimentMaxTrialsReached", "Never")
    raised = copy.deepcopy(never)
    raised["spec"]["maxTrialCount"] = 20
    raised.pop("status")
    assert "spec.resumePolicy" in rejected(registry, raised, never)

    long_running = _finished(copy.deepcopy(stored), "ExperimentMaxTrialsReached", "LongRunning")
    raised = copy.deepcopy(long_running)
    raised["spec"]["maxTrialCount"] = 20
    admit(raised, long_running, registry)
    raised["spec"]["maxTrialCount"] = 10  # not above status.trials (12)
    assert "spec.maxTrialCount" in rejected(registry, raised, long_running)

    goal = _finished(copy.deepcopy(stored), "ExperimentGoalReached", "LongRunning")
    raised = copy.deepcopy(goal)
    raised["spec"]["maxTrialCount"] = 20
    assert "spec.resumePolicy" in rejected(registry, raised, goal)
