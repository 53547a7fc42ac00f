"""Writing an InferenceService's ``status`` as KServe reports it.

``url``/``address`` (the router's entry port), ``components.<c>{url, address,
latestCreatedRevision, latestReadyRevision, latestRolledoutRevision, previousRolledoutRevision,
traffic}``, conditions (``<C>ConfigurationReady``, ``<C>RouteReady``, ``<C>Ready`` per component,
``IngressReady``, ``LatestDeploymentReady``, ``Ready``) and ``modelStatus`` (``states``,
``transitionStatus``, ``copies``, ``lastFailureInfo``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from flowyard.controllers.base import Result
from flowyard.resources.conditions import set_condition
from flowyard.serving.replicas import RevisionState


@dataclass
class ComponentReport:
    component: str
    latest: str
    states: dict[str, RevisionState] = field(default_factory=dict)
    traffic: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, Any] = field(default_factory=dict)
    revisions: list[str] = field(default_factory=list)
    route: Any = None

    @property
    def latest_state(self) -> RevisionState:
        return self.states.get(self.latest) or RevisionState()


def ports_of(status: dict[str, Any]) -> tuple[int, int]:
    """The router ports recorded in ``status`` (0 when none yet)."""
    entry = urlparse(str(status.get("url") or "")).port or 0
    pred = ((status.get("components") or {}).get("predictor") or {}).get("url") or ""
    return entry, urlparse(str(pred)).port or 0


def set_urls(status: dict[str, Any], entry: int, pport: int) -> None:
    status["url"] = f"http://127.0.0.1:{entry}"
    status["address"] = {"url": status["url"]}
    predictor = status.setdefault("components", {}).setdefault("predictor", {})
    predictor["url"] = f"http://127.0.0.1:{pport}"
    predictor["address"] = {"url": predictor["url"]}


def write_unsupported(
    isvc: dict[str, Any], entry: int, pport: int, reason: str, message: str
) -> None:
    status = isvc["status"]
    set_urls(status, entry, pport)
    for cond in ("PredictorConfigurationReady", "PredictorReady", "LatestDeploymentReady", "Ready"):
        set_condition(isvc, cond, False, reason, message)
    status["modelStatus"] = {
        "transitionStatus": "InvalidSpec",
        "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
        "lastFailureInfo": {"reason": reason, "message": message},
    }


def _component_status(report: ComponentReport, out: dict[str, Any]) -> None:
    history = report.history
    out["latestCreatedRevision"] = report.latest
    ready = [r["name"] for r in history.get("revisions", []) if r["ready"]]
    if ready:
        out["latestReadyRevision"] = ready[-1]
    for field_name, key in (
        ("latestRolledoutRevision", "rolled"),
        ("previousRolledoutRevision", "previous"),
    ):
        if history.get(key):
            out[field_name] = history[key]
        else:
            out.pop(field_name, None)
    out["traffic"] = report.traffic


def write(
    isvc: dict[str, Any],
    reports: dict[str, ComponentReport],
    entry: int,
    pport: int,
    tag_url: Any,
) -> None:
    status = isvc["status"]
    set_urls(status, entry, pport)
    components = status["components"]
    for name in list(components):
        if name not in reports:
            del components[name]
    all_routed = True
    all_latest = True
    for name, report in reports.items():
        out = components.setdefault(name, {})
        _component_status(report, out)
        title = name.capitalize()
        latest = report.latest_state
        latest_ready = any(
            r["ready"] for r in report.history.get("revisions", []) if r["name"] == report.latest
        )
        routed = bool(report.traffic) and any(e["percent"] > 0 for e in report.traffic)
        failure = latest.failure
        if latest_ready:
            set_condition(isvc, f"{title}ConfigurationReady", True)
        elif failure:
            set_condition(isvc, f"{title}ConfigurationReady", False, failure[0], failure[1])
        else:
            set_condition(
                isvc,
                f"{title}ConfigurationReady",
                "Unknown",
                "RevisionMissing",
                f"Revision {report.latest} is starting",
            )
        set_condition(isvc, f"{title}RouteReady", routed, "" if routed else "TrafficNotReady")
        ok = routed
        reason, message = failure or ("RevisionMissing", f"{report.latest} has no ready replica")
        set_condition(isvc, f"{title}Ready", ok, "" if ok else reason, "" if ok else message)
        all_routed = all_routed and ok
        all_latest = all_latest and latest_ready
    set_condition(isvc, "IngressReady", all_routed, "" if all_routed else "RoutesNotReady")
    set_condition(isvc, "LatestDeploymentReady", all_latest, "" if all_latest else "InProgress")
    set_condition(isvc, "Ready", all_routed, "" if all_routed else "ComponentsNotReady")
    status["modelStatus"] = _model_status(reports["predictor"])


def _model_status(report: ComponentReport) -> dict[str, Any]:
    state = report.latest_state
    ready = any(
        r["ready"] for r in report.history.get("revisions", []) if r["name"] == report.latest
    )
    if state.failure and not state.ready:
        active, transition = "FailedToLoad", "BlockedByFailedLoad"
    elif ready:
        active, transition = "Loaded", "UpToDate"
    else:
        active, transition = ("Loading" if state.running else "Pending"), "InProgress"
    out: dict[str, Any] = {
        "states": {"activeModelState": active, "targetModelState": "Loaded"},
        "transitionStatus": transition,
        "copies": {
            "failedCopies": 0 if not state.failure else max(state.running - len(state.ready), 1),
            "totalCopies": state.running,
        },
    }
    if state.failure:
        reason, message = state.failure
        info: dict[str, Any] = {"reason": reason, "message": message}
        if reason == "CrashLoopBackOff":  # KServe's enum has no crash reason: the runtime died
            info.update(reason="RuntimeUnhealthy", modelRevisionName=report.latest)
            if state.exit_code is not None:
                info["exitCode"] = state.exit_code
        out["lastFailureInfo"] = info
    return out


def _scales(component: dict[str, Any]) -> bool:
    low = component.get("minReplicas", 1)
    return bool(low == 0 or component.get("maxReplicas", 0) not in (0, low))


def requeue(isvc: dict[str, Any], reports: dict[str, ComponentReport]) -> Result | None:
    """Soon while replicas load; every second while the autoscaler has work; slowly on failure."""
    spec = isvc["spec"]
    if any(s.loading for r in reports.values() for s in r.states.values()):
        return Result(requeue_after=0.3)
    scaling = any(_scales(spec.get(name) or {}) for name in reports)
    waits = [s.retry_in for r in reports.values() for s in r.states.values() if s.retry_in]
    if waits:  # a crashed replica's back-off ends: restart it then
        after = max(min(waits), 0.2) + 0.05
        return Result(requeue_after=min(after, 1.0) if scaling else after)
    if scaling:
        return Result(requeue_after=1.0)
    if any(s.failure for r in reports.values() for s in r.states.values()):
        return Result(requeue_after=3.0)
    return None
