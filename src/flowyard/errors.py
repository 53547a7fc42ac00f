"""The one error tree of flowyard.

Every error a user can see is a :class:`FlowyardError`. Each carries the HTTP status code and the
Kubernetes ``Status.reason`` it maps to, so the API server, the client and the CLI all speak the
same language: the server turns an error into a ``Status`` object, the client turns a ``Status``
object back into the same error class, and the CLI prints ``message`` and exits 1.

Messages name the thing that is wrong and, where there is one, the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldCause:
    """One bad field: a Kubernetes ``StatusCause`` (``field`` is a dotted path such as
    ``spec.template.spec.containers[0].image``)."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


class FlowyardError(Exception):
    """Base of every flowyard error. ``code`` is the HTTP status, ``reason`` the Kubernetes
    ``Status.reason``."""

    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        causes: list[FieldCause] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.causes = list(causes or [])
        self.details = dict(details or {})

    def to_status(self) -> dict[str, Any]:
        """The Kubernetes ``Status`` object for this error."""
        details = dict(self.details)
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            status["details"] = details
        return status


class BadRequestError(FlowyardError):
    """The request itself is malformed (bad YAML/JSON, bad query parameter)."""

    code = 400
    reason = "BadRequest"


class UnauthorizedError(FlowyardError):
    """No credentials, or credentials that are not valid."""

    code = 401
    reason = "Unauthorized"


class ForbiddenError(FlowyardError):
    """Valid credentials that may not do this."""

    code = 403
    reason = "Forbidden"


class NotFoundError(FlowyardError):
    """The object, kind or route does not exist."""

    code = 404
    reason = "NotFound"


class MethodNotAllowedError(FlowyardError):
    code = 405
    reason = "MethodNotAllowed"


class AlreadyExistsError(FlowyardError):
    """An object of that kind, namespace and name exists already."""

    code = 409
    reason = "AlreadyExists"


class ConflictError(FlowyardError):
    """Optimistic concurrency failed: the object changed since it was read (stale
    ``resourceVersion``). Re-read and retry."""

    code = 409
    reason = "Conflict"


class GoneError(FlowyardError):
    """A watch asked for a ``resourceVersion`` older than the event log keeps."""

    code = 410
    reason = "Expired"


class TooLargeError(FlowyardError):
    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaTypeError(FlowyardError):
    code = 415
    reason = "UnsupportedMediaType"


class InvalidError(FlowyardError):
    """The object fails schema or semantic validation; ``causes`` name each bad field."""

    code = 422
    reason = "Invalid"


class InternalError(FlowyardError):
    code = 500
    reason = "InternalError"


class UnavailableError(FlowyardError):
    """A dependency (the server, the database, an executor) cannot be reached."""

    code = 503
    reason = "ServiceUnavailable"


class ServerNotRunningError(UnavailableError):
    """The client could not connect to the flowyard server."""


class ExecutorError(FlowyardError):
    """The executor could not start, watch or stop a process."""

    code = 500
    reason = "ExecutorError"


class InsufficientResourcesError(InvalidError):
    """A process or gang asks for more than this machine (or cluster) can ever hold."""


_BY_CODE_REASON: dict[tuple[int, str], type[FlowyardError]] = {}


def _index(cls: type[FlowyardError]) -> None:
    _BY_CODE_REASON.setdefault((cls.code, cls.reason), cls)
    for sub in cls.__subclasses__():
        _index(sub)


def error_from_status(status: dict[str, Any], http_code: int) -> FlowyardError:
    """Rebuild the error class for a Kubernetes ``Status`` body the server sent."""
    if not _BY_CODE_REASON:
        _index(FlowyardError)
    code = int(status.get("code") or http_code)
    reason = str(status.get("reason") or "")
    cls = _BY_CODE_REASON.get((code, reason))
    if cls is None:
        cls = next((c for (k, _), c in _BY_CODE_REASON.items() if k == code), FlowyardError)
    details = dict(status.get("details") or {})
    causes = [
        FieldCause(
            field=str(c.get("field", "")),
            message=str(c.get("message", "")),
            reason=str(c.get("reason", "FieldValueInvalid")),
        )
        for c in details.pop("causes", [])
    ]
    return cls(str(status.get("message") or f"HTTP {code}"), causes=causes, details=details)


__all__ = [
    "AlreadyExistsError",
    "BadRequestError",
    "ConflictError",
    "ExecutorError",
    "FieldCause",
    "FlowyardError",
    "ForbiddenError",
    "GoneError",
    "InsufficientResourcesError",
    "InternalError",
    "InvalidError",
    "MethodNotAllowedError",
    "NotFoundError",
    "ServerNotRunningError",
    "TooLargeError",
    "UnauthorizedError",
    "UnavailableError",
    "UnsupportedMediaTypeError",
    "error_from_status",
]
