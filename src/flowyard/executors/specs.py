"""Checks on a ProcessSpec before an executor accepts it (shared by every executor)."""

from __future__ import annotations

import math

from flowyard.errors import FieldCause, InvalidError
from flowyard.executors.base import ProcessSpec


def spec_problems(spec: ProcessSpec) -> list[FieldCause]:
    """Every problem of ``spec``, each naming its field."""
    causes: list[FieldCause] = []

    def bad(field: str, message: str) -> None:
        causes.append(FieldCause(field=field, message=f"{field}: {message}"))

    if not isinstance(spec.name, str) or not spec.name:
        bad("name", "must be a non-empty string")
    if not isinstance(spec.argv, list) or not spec.argv:
        bad("argv", "must be a non-empty list of strings (the program and its arguments)")
    else:
        for i, arg in enumerate(spec.argv):
            if not isinstance(arg, str) or "\0" in arg:
                bad(f"argv[{i}]", "must be a string without NUL characters")
        if isinstance(spec.argv[0], str) and not spec.argv[0]:
            bad("argv[0]", "the program must not be empty")
    if not isinstance(spec.log_path, str) or not spec.log_path:
        bad("log_path", "must be a file path")
    for key, value in spec.env.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            bad(f"env[{key!r}]", "names must be non-empty strings without '=' or NUL")
        elif not isinstance(value, str) or "\0" in value:
            bad(f"env[{key!r}]", "values must be strings without NUL characters")
    res = spec.resources
    if not (math.isfinite(res.cpu) and res.cpu >= 0) or res.memory < 0 or res.gpu < 0:
        bad("resources", f"must not be negative ({res})")
    deadline = spec.deadline_seconds
    if deadline is not None and not (math.isfinite(deadline) and deadline > 0):
        bad("deadline_seconds", f"must be a positive number of seconds, not {deadline!r}")
    return causes


def validate_spec(spec: ProcessSpec) -> None:
    """Raise InvalidError naming every bad field of ``spec``."""
    causes = spec_problems(spec)
    if causes:
        name = spec.name if isinstance(spec.name, str) else "?"
        summary = "; ".join(c.message for c in causes)
        raise InvalidError(f"invalid process spec {name!r}: {summary}", causes=causes)


def validate_gang(specs: list[ProcessSpec]) -> None:
    """Raise InvalidError for an empty gang, duplicate names or any bad member."""
    if not specs:
        raise InvalidError("a gang needs at least one process spec")
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidError(f"gang member names must be unique; repeated: {duplicates}")
    for spec in specs:
        validate_spec(spec)
