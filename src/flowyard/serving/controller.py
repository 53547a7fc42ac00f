"""The InferenceService controller: runtimes -> plans -> revisions -> replicas -> routes -> status.

Each reconcile (level-triggered, idempotent; the revision history lives in
``status.flowyard``):

1. the object is gone or being deleted: stop its replicas and its router;
2. start (or find) its router on the ports of ``status.url`` / the predictor URL;
3. build each component's plan (runtime selection; ``NoSupportingRuntime`` -> status says why,
   nothing runs); a changed plan is a new revision;
4. run the replicas of the revisions that matter (latest, rolled-out, previous when routed), as
   many as the autoscaler says, and probe them;
5. compute traffic (canary split, promotion, rollback), push routes to the router, write the
   status KServe reports.

The router wakes the controller directly when a request waits for a scaled-to-zero revision
(``kick``); a per-key lock keeps that call and the manager's workers from overlapping.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
from collections import defaultdict
from typing import Any

from flowyard.controllers.base import (
    LABEL_KIND,
    LABEL_NAME,
    LABEL_NAMESPACE,
    LABEL_UID,
    Controller,
    ControllerContext,
    ObjectKey,
    Result,
)
from flowyard.errors import NotFoundError
from flowyard.executors.base import ProcessStatus
from flowyard.serving import status as status_mod
from flowyard.serving.grpc_proxy import get_proxies
from flowyard.serving.kinds import INFERENCESERVICE
from flowyard.serving.plan import predictor_plan, sidecar_plan
from flowyard.serving.replicas import LABEL_COMPONENT, LABEL_REVISION, sync_replicas
from flowyard.serving.router import ComponentRoute, Routes, get_hub
from flowyard.serving.selection import NoSupportingRuntime, runtimes_for
from flowyard.serving.traffic import compute_traffic, record_revision, revision

TAG_ROUTING = "serving.kserve.io/enable-tag-routing"
_TARGET = "autoscaling.knative.dev/target"
_METRIC = "autoscaling.knative.dev/metric"
IDLE_ENV = "FLOWYARD_SERVING_SCALE_TO_ZERO_SECONDS"


def _idle_seconds() -> float:
    return float(os.environ.get(IDLE_ENV, "60"))


class InferenceServiceController(Controller):
    kind = INFERENCESERVICE
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.hub = get_hub()
        self.hub.kick = self._kick
        self._locks: dict[ObjectKey, threading.Lock] = defaultdict(threading.Lock)

    def _kick(self, key: tuple[str, str]) -> None:
        with contextlib.suppress(Exception):  # the manager retries on its own schedule
            self.reconcile(ObjectKey(*key))

    def reconcile(self, key: ObjectKey) -> Result | None:
        with self._locks[key]:
            return self._reconcile(key)

    def _reconcile(self, key: ObjectKey) -> Result | None:
        try:
            isvc = self.store.get(INFERENCESERVICE, key.namespace, key.name)
        except NotFoundError:
            self._teardown(key, None)
            return None
        uid = isvc["metadata"]["uid"]
        if isvc["metadata"].get("deletionTimestamp"):
            self._teardown(key, None)
            return None
        self._teardown(key, uid)  # replicas of an older object of the same name
        new = copy.deepcopy(isvc)
        status = new.setdefault("status", {})
        entry, predictor_port = self.hub.ensure(
            (key.namespace, key.name), *status_mod.ports_of(status)
        )
        status_mod.set_urls(status, entry, predictor_port)
        try:
            plans = self._plans(new, predictor_port)
        except NoSupportingRuntime as exc:
            self._stop_all(uid)
            status_mod.write_unsupported(new, entry, predictor_port, exc.reason, str(exc))
            self._save(isvc, new)
            return None
        result = self._run(new, plans, entry, predictor_port)
        self._save(isvc, new)
        return result

    def _plans(self, isvc: dict[str, Any], predictor_port: int) -> dict[str, dict[str, Any]]:
        runtimes = runtimes_for(self.store, isvc["metadata"]["namespace"])
        plans = {"predictor": predictor_plan(isvc, runtimes)}
        for component in ("transformer", "explainer"):
            if isvc["spec"].get(component):
                host = f"127.0.0.1:{predictor_port}"
                plans[component] = sidecar_plan(isvc, component, host)
        return plans

    def _run(
        self, isvc: dict[str, Any], plans: dict[str, dict[str, Any]], entry: int, pport: int
    ) -> Result | None:
        md = isvc["metadata"]
        status = isvc["status"]
        history = status.setdefault("flowyard", {})
        procs = self.executor.list({LABEL_UID: md["uid"]})
        routes = Routes(md["namespace"], md["name"])
        reports: dict[str, status_mod.ComponentReport] = {}
        keep: set[str] = set()
        for component, plan in plans.items():
            report = self._component(
                isvc, component, plan, history.setdefault(component, {}), procs
            )
            reports[component] = report
            keep |= set(report.revisions)
            routes.components[component] = report.route
        for proc in procs:
            if proc.labels.get(LABEL_REVISION) not in keep and not proc.state.finished:
                self.executor.kill(proc.name, grace_seconds=5.0)
        for component in list(history):
            if component not in plans:
                del history[component]
        self.hub.apply((md["namespace"], md["name"]), routes)
        status_mod.write(isvc, reports, entry, pport, self._tag_url(isvc, pport))
        self._grpc(isvc, routes.components["predictor"])
        return status_mod.requeue(isvc, reports)

    def _component(
        self,
        isvc: dict[str, Any],
        component: str,
        plan: dict[str, Any],
        history: dict[str, Any],
        procs: list[ProcessStatus],
    ) -> status_mod.ComponentReport:
        spec = isvc["spec"][component]
        latest = record_revision(history, isvc["metadata"]["name"], component, plan)
        wanted = [latest["name"]]
        for name in (history.get("rolled"), history.get("previous")):
            if name and name not in wanted and (name == history.get("rolled") or self._tags(isvc)):
                wanted.append(name)
        report = status_mod.ComponentReport(component=component, latest=latest["name"])
        endpoints: dict[str, list[str]] = {}
        grpc_endpoints: dict[str, list[str]] = {}
        crashes = history.setdefault("crashes", {})
        for key in [k for k in crashes if k.rsplit("/", 1)[0] not in wanted]:
            del crashes[key]
        for name in wanted:
            record = revision(history, name)
            if record is None:
                continue
            mine = [
                p
                for p in procs
                if p.labels.get(LABEL_REVISION) == name
                and p.labels.get(LABEL_COMPONENT) == component
            ]
            desired = self._desired(isvc, component, name, spec, mine, record["ready"])
            found = sync_replicas(
                self.executor, isvc, component, name, record["plan"], mine, desired, crashes
            )
            endpoints[name] = found.ready
            grpc_endpoints[name] = found.grpc
            if found.ready:
                record["ready"] = True
            report.states[name] = found
        canary = spec.get("canaryTrafficPercent")
        tag_url = self._tag_url(isvc, None) if self._tags(isvc) else None
        report.traffic = compute_traffic(history, canary, tag_url)
        report.history = history
        report.revisions = wanted
        tags = {e["tag"]: e["revisionName"] for e in report.traffic if e.get("tag")}
        report.route = ComponentRoute(
            split=[(e["revisionName"], int(e["percent"])) for e in report.traffic],
            tags=tags,
            endpoints=endpoints,
            concurrency=int(spec.get("containerConcurrency") or 0),
            timeout=float(spec.get("timeout") or 300),
            logger=spec.get("logger"),
            grpc=grpc_endpoints,
        )
        return report

    def _desired(
        self,
        isvc: dict[str, Any],
        component: str,
        revision_name: str,
        spec: dict[str, Any],
        procs: list[ProcessStatus],
        was_ready: bool,
    ) -> int:
        annotations = isvc["metadata"].get("annotations") or {}
        metric = str(spec.get("scaleMetric") or annotations.get(_METRIC) or "concurrency")
        default_target = 100.0 if metric == "concurrency" else 200.0
        target = float(spec.get("scaleTarget") or annotations.get(_TARGET) or default_target)
        running = sum(1 for p in procs if not p.state.finished)
        desired = self.hub.desired(
            (isvc["metadata"]["namespace"], isvc["metadata"]["name"]),
            component,
            revision_name,
            current=running,
            min_replicas=int(spec.get("minReplicas", 1) or 0),
            max_replicas=int(spec.get("maxReplicas") or 0),
            target=target,
            metric=metric,
            idle_seconds=_idle_seconds(),
        )
        # A new revision starts one replica to prove it loads, even at minReplicas 0.
        return max(desired, 0 if was_ready else 1)

    @staticmethod
    def _grpc(isvc: dict[str, Any], route: ComponentRoute) -> None:
        """V2 gRPC to the predictor: the proxy's port in ``status.grpcAddress``."""
        md, status = isvc["metadata"], isvc["status"]
        wanted = str(status.get("grpcAddress") or "").rpartition(":")[2]
        proxy = get_proxies().ensure((md["namespace"], md["name"]), int(wanted or 0))
        proxy.update(route.split, route.grpc, route.timeout)
        status["grpcAddress"] = f"127.0.0.1:{proxy.port}"

    @staticmethod
    def _tags(isvc: dict[str, Any]) -> bool:
        annotations = isvc["metadata"].get("annotations") or {}
        return str(annotations.get(TAG_ROUTING, "")).lower() == "true"

    @staticmethod
    def _tag_url(isvc: dict[str, Any], pport: int | None) -> Any:
        md = isvc["metadata"]
        port = status_mod.ports_of(isvc.get("status") or {})[0]

        def url(tag: str) -> str:
            return f"http://{tag}-{md['name']}-predictor.{md['namespace']}.localhost:{port}"

        return url

    def _save(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if new.get("status") != old.get("status"):
            self.store.update_status(new)

    def _stop_all(self, uid: str) -> None:
        for proc in self.executor.list({LABEL_UID: uid}):
            if not proc.state.finished:
                self.executor.kill(proc.name, grace_seconds=2.0)

    def _teardown(self, key: ObjectKey, keep_uid: str | None) -> None:
        """Stop replicas of ``key`` (all, or those of another uid than ``keep_uid``)."""
        labels = {LABEL_KIND: INFERENCESERVICE.key, LABEL_NAMESPACE: key.namespace}
        labels[LABEL_NAME] = key.name
        for proc in self.executor.list(labels):
            if keep_uid is not None and proc.labels.get(LABEL_UID) == keep_uid:
                continue
            if proc.state.finished:
                self.executor.forget(proc.name)
            else:
                self.executor.kill(proc.name, grace_seconds=2.0)
        if keep_uid is None:
            self.hub.remove((key.namespace, key.name))
            get_proxies().remove((key.namespace, key.name))
