"""The study REST API (Vizier/advisor style) for remote workers; see :mod:`.study`.

Routes, under ``/tuning/v1/namespaces/{namespace}`` (JSON in and out, the server's token auth;
authorization as ``experiments``/``trials`` of ``kubeflow.org`` in that namespace)::

    POST   /studies                                {"name", "spec"}            -> study
    GET    /studies                                                    -> {"studies": [...]}
    GET    /studies/{study}                                                     -> study
    DELETE /studies/{study}                        (its trials go with it)
    POST   /studies/{study}/trials:suggest         {"suggestionCount", "clientId"}
                                                   -> {"trials": [...], "studyDone": bool}
    GET    /studies/{study}/trials                                              -> {"trials": [...]}
    GET    /studies/{study}/trials/{trial}                                      -> trial
    POST   /studies/{study}/trials/{trial}:addMeasurement  {"measurement": {...}} -> trial
    POST   /studies/{study}/trials/{trial}:checkEarlyStoppingState  -> {"shouldStop": bool}
    POST   /studies/{study}/trials/{trial}:stop                                 -> trial
    POST   /studies/{study}/trials/{trial}:complete
           {"finalMeasurement"?, "trialInfeasible"?, "infeasibleReason"?}       -> trial
    GET    /studies/{study}:listOptimalTrials                -> {"optimalTrials": [...]}

Errors are Kubernetes ``Status`` objects, as on every other route.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request

from flowyard.api.auth import User
from flowyard.api.service import ResourceService
from flowyard.errors import InvalidError
from flowyard.tuning.study import (
    EXPERIMENT,
    TRIAL,
    StudyService,
    is_study,
    parse_measurement,
    study_experiment,
    study_view,
    trial_view,
)

PREFIX = "/tuning/v1/namespaces/{namespace}/studies"
_BODY = Body(None)  # an optional JSON body (validated by the handlers, with field names)


def _user(request: Request) -> User:
    user = request.scope.get("state", {}).get("user")
    assert isinstance(user, User), "the auth middleware sets the user"
    return user


def _body(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidError("the request body must be a JSON object")
    return body


def build_router(service: ResourceService) -> APIRouter:
    """The study API over ``service``'s store and authorizer."""
    studies = StudyService(service.store)
    router = APIRouter(tags=["studies"])

    def check(request: Request, verb: str, info: Any, namespace: str, name: str = "") -> None:
        service.check(_user(request), verb, info, namespace, name)

    def view(namespace: str, study: str, trial: Any) -> dict[str, Any]:
        return trial_view(studies.study(namespace, study), trial)

    @router.post(PREFIX, status_code=201)
    def create(request: Request, namespace: str, body: Any = _BODY) -> dict[str, Any]:
        data = _body(body)
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidError("name: a study name is required")
        obj = study_experiment(namespace, name, data.get("spec") or {})
        return study_view(service.create(_user(request), EXPERIMENT, namespace, obj))

    @router.get(PREFIX)
    def list_studies(request: Request, namespace: str) -> dict[str, Any]:
        check(request, "list", EXPERIMENT, namespace)
        items = studies.store.list(
            EXPERIMENT, namespace, label_selector="tuning.flowyard.io/study=true"
        )
        return {"studies": [study_view(s) for s in items.items if is_study(s)]}

    # Before GET /{study}: its parameter would match "name:listOptimalTrials" too.
    @router.get(PREFIX + "/{study}:listOptimalTrials")
    def optimal(request: Request, namespace: str, study: str) -> dict[str, Any]:
        check(request, "get", EXPERIMENT, namespace, study)
        found = studies.study(namespace, study)
        return {"optimalTrials": [trial_view(found, t) for t in studies.optimal(namespace, study)]}

    @router.get(PREFIX + "/{study}")
    def get_study(request: Request, namespace: str, study: str) -> dict[str, Any]:
        check(request, "get", EXPERIMENT, namespace, study)
        return study_view(studies.study(namespace, study))

    @router.delete(PREFIX + "/{study}")
    def delete(request: Request, namespace: str, study: str) -> dict[str, Any]:
        found = studies.study(namespace, study)
        service.delete(_user(request), EXPERIMENT, namespace, study, "Background")
        studies.forget(str(found["metadata"]["uid"]))
        return {"kind": "Status", "status": "Success", "details": {"name": study}}

    @router.post(PREFIX + "/{study}/trials:suggest")
    def suggest(request: Request, namespace: str, study: str, body: Any = _BODY) -> dict[str, Any]:
        data = _body(body)
        check(request, "create", TRIAL, namespace)
        count = data.get("suggestionCount", 1)
        if isinstance(count, bool) or not isinstance(count, int):
            raise InvalidError("suggestionCount must be an integer")
        client = data.get("clientId") or ""
        if not isinstance(client, str):
            raise InvalidError("clientId must be a string")
        made = studies.suggest(namespace, study, count, client)
        found = studies.study(namespace, study)
        done = not made and (
            study_view(found)["state"] != "Active"
            or (found["metadata"].get("annotations") or {}).get("tuning.flowyard.io/suggestion-end")
            == "true"
            or _budget_spent(found, len(studies.trials(found)))
        )
        return {"trials": [trial_view(found, t) for t in made], "studyDone": done}

    @router.get(PREFIX + "/{study}/trials")
    def list_trials(request: Request, namespace: str, study: str) -> dict[str, Any]:
        check(request, "list", TRIAL, namespace)
        found = studies.study(namespace, study)
        return {"trials": [trial_view(found, t) for t in studies.trials(found)]}

    @router.get(PREFIX + "/{study}/trials/{trial}")
    def get_trial(request: Request, namespace: str, study: str, trial: str) -> dict[str, Any]:
        check(request, "get", TRIAL, namespace, trial)
        return view(namespace, study, studies.trial(namespace, study, trial))

    @router.post(PREFIX + "/{study}/trials/{trial}:addMeasurement")
    def add_measurement(
        request: Request, namespace: str, study: str, trial: str, body: Any = _BODY
    ) -> dict[str, Any]:
        check(request, "update", TRIAL, namespace, trial)
        measurement = parse_measurement(_body(body).get("measurement"))
        return view(namespace, study, studies.add_measurement(namespace, study, trial, measurement))

    @router.post(PREFIX + "/{study}/trials/{trial}:checkEarlyStoppingState")
    def should_stop(request: Request, namespace: str, study: str, trial: str) -> dict[str, Any]:
        check(request, "update", TRIAL, namespace, trial)
        return {"shouldStop": studies.check_early_stopping(namespace, study, trial)}

    @router.post(PREFIX + "/{study}/trials/{trial}:stop")
    def stop(request: Request, namespace: str, study: str, trial: str) -> dict[str, Any]:
        check(request, "update", TRIAL, namespace, trial)
        return view(namespace, study, studies.stop(namespace, study, trial))

    @router.post(PREFIX + "/{study}/trials/{trial}:complete")
    def complete(
        request: Request, namespace: str, study: str, trial: str, body: Any = _BODY
    ) -> dict[str, Any]:
        check(request, "update", TRIAL, namespace, trial)
        data = _body(body)
        final = data.get("finalMeasurement")
        measurement = parse_measurement(final) if final is not None else None
        reason = None
        if data.get("trialInfeasible"):
            reason = str(data.get("infeasibleReason") or "reported by the worker")
        done = studies.complete(namespace, study, trial, measurement, reason)
        return view(namespace, study, done)

    return router


def _budget_spent(study: Any, trials: int) -> bool:
    limit = study["spec"].get("maxTrialCount")
    return limit is not None and trials >= int(limit)
