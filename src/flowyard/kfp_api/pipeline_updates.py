"""``PATCH /apis/v2beta1/pipelines/{id}`` and ``.../versions/{version id}``: KFP's
UpdatePipeline and UpdatePipelineVersion.

KFP lets a user change a pipeline's (or version's) display name and tags; flowyard also takes a
new ``description``. Other fields are output-only or immutable and are ignored, as
grpc-gateway's field masks would. The resource name is kept (ids never change), so a renamed
pipeline stays unique by display name through :func:`check_unique`, not through the store.
Tags are stored in ``spec.tags`` and follow KFP's rules: at most 20, keys non-empty without
``.``, keys and values at most 63 characters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from flowyard.api.json import JSONResponse
from flowyard.errors import AlreadyExistsError, BadRequestError, FieldCause, InvalidError
from flowyard.kfp_api import convert
from flowyard.kfp_api.context import KfpContext, user_of
from flowyard.kfp_api.index import Row
from flowyard.pipelines.kinds import PIPELINE, PIPELINE_VERSION
from flowyard.resources.meta import Resource

ROOT = "/apis/v2beta1/pipelines"
MAX_TAGS = 20
MAX_TAG_LENGTH = 63


def tag_causes(tags: Any, field: str) -> list[FieldCause]:
    """What is wrong with ``tags`` (KFP's constraints), as field causes."""
    if not isinstance(tags, dict):
        return [FieldCause(field, "Invalid value: tags must be an object of strings")]
    causes = []
    if len(tags) > MAX_TAGS:
        causes.append(FieldCause(field, f"Too many: {len(tags)} tags, at most {MAX_TAGS}"))
    for key, value in tags.items():
        if not key or "." in key or len(key) > MAX_TAG_LENGTH:
            causes.append(
                FieldCause(
                    f"{field}[{key}]",
                    f"Invalid value: a tag key must be 1-{MAX_TAG_LENGTH} characters without '.'",
                )
            )
        if not isinstance(value, str) or len(value) > MAX_TAG_LENGTH:
            causes.append(
                FieldCause(
                    f"{field}[{key}]",
                    f"Invalid value: a tag value must be a string of at most {MAX_TAG_LENGTH} "
                    "characters",
                )
            )
    return causes


def spec_patch(body: dict[str, Any], noun: str) -> dict[str, Any]:
    """The spec fields a PATCH body changes; InvalidError (400) for bad values."""
    patch: dict[str, Any] = {}
    display = body.get("display_name") or body.get("name")
    if display is not None:
        if not isinstance(display, str) or not display.strip():
            raise BadRequestError(f"Failed to update the {noun}: display_name must not be empty")
        patch["displayName"] = display.strip()
    if body.get("description") is not None:
        patch["description"] = str(body["description"])
    if body.get("tags") is not None:
        causes = tag_causes(body["tags"], "tags")
        if causes:
            raise InvalidError(f"Failed to update the {noun}: invalid tags", causes=causes)
        patch["tags"] = dict(body["tags"])
    return patch


def check_unique(
    ctx: KfpContext, info: Any, row: Row, display: str, same_group: Callable[[Row], bool]
) -> None:
    """AlreadyExistsError (409) when another object of the group has display name
    ``display``."""
    ctx.index.sync()
    for other in ctx.index.select(info, same_group):
        if other["id"] != row["id"] and other["display_name"] == display:
            noun = "pipeline" if info is PIPELINE else "pipeline version"
            raise AlreadyExistsError(
                f"Failed to update the {noun}: a {noun} named {display!r} already exists; "
                "choose another name"
            )


def _apply(ctx: KfpContext, request: Request, info: Any, obj: Resource, patch: Any) -> Resource:
    if not patch:
        return obj
    if "tags" in patch:
        # Tags are replaced as a whole: a merge patch removes the keys set to null.
        old = obj["spec"].get("tags") or {}
        patch["tags"] = {**{k: None for k in old}, **patch["tags"]}
    return ctx.patch(user_of(request), info, obj, {"spec": patch})


def build(router: APIRouter, ctx: KfpContext, version_of: Any) -> None:
    """Add the PATCH routes; ``version_of(request, pipeline id, version id)`` reads a version
    that belongs to the pipeline (404 otherwise)."""

    @router.patch(ROOT + "/{pipeline_id}")
    def update_pipeline(request: Request, pipeline_id: str, body: dict[str, Any]) -> Response:
        obj = ctx.get(user_of(request), PIPELINE, pipeline_id)
        patch = spec_patch(body, "pipeline")
        if "displayName" in patch:
            row = ctx.row(PIPELINE, pipeline_id)
            check_unique(ctx, PIPELINE, row, patch["displayName"], lambda r: r["ns"] == row["ns"])
        return JSONResponse(convert.pipeline_to_kfp(_apply(ctx, request, PIPELINE, obj, patch)))

    @router.patch(ROOT + "/{pipeline_id}/versions/{version_id}")
    def update_version(
        request: Request, pipeline_id: str, version_id: str, body: dict[str, Any]
    ) -> Response:
        obj = version_of(request, pipeline_id, version_id)
        patch = spec_patch(body, "pipeline version")
        if "displayName" in patch:
            row = ctx.row(PIPELINE_VERSION, version_id)
            check_unique(
                ctx,
                PIPELINE_VERSION,
                row,
                patch["displayName"],
                lambda r: r["ns"] == row["ns"] and r["pipeline"] == row["pipeline"],
            )
        updated = _apply(ctx, request, PIPELINE_VERSION, obj, patch)
        return JSONResponse(convert.version_to_kfp(updated, ctx.ids))
