"""Turning a Python function and its arguments into a trainer command (TrainerClient.train).

The function travels as source (``inspect.getsource``, dedented), so it must be self-contained:
imports inside its body, no closures over local variables (upstream's SDK has the same rule).
Its arguments travel pickled (protocol 5, base64 in the script), so they keep their Python
types: tuples stay tuples, ints stay ints, bytes, sets, datetimes and instances of importable
classes round-trip (upstream's SDK passes them through ``repr``/JSON). The script is passed as
``python -c`` (or ``torchrun --no-python python3 -c`` for torch runtimes) within Linux's
128 KiB limit for one argument; bigger arguments belong in files or object storage.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import pickle
import textwrap
from collections.abc import Callable
from typing import Any

from flowyard.errors import InvalidError

MAX_SCRIPT_BYTES = 120 * 1024  # below MAX_ARG_STRLEN (128 KiB) with room for the interpreter


def function_script(func: Callable[..., Any], func_args: dict[str, Any] | None = None) -> str:
    """A Python script that defines ``func`` and calls it with ``func_args``."""
    if not callable(func) or getattr(func, "__name__", "<lambda>") == "<lambda>":
        raise InvalidError(
            "train(func=...): pass a named function defined with def, not a "
            f"{type(func).__name__} or lambda"
        )
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as exc:
        raise InvalidError(
            f"train(func={func.__name__}): its source is not available ({exc}); "
            "define it in a file or notebook cell"
        ) from exc
    source = "\n".join(line for line in source.splitlines() if not line.startswith("@"))
    payload = base64.b64encode(pickle.dumps(dict(func_args or {}), protocol=5)).decode()
    script = (
        "import base64, pickle\n"
        f"{source}\n"
        f"_flowyard_args = pickle.loads(base64.b64decode({payload!r}))\n"
        f"{func.__name__}(**_flowyard_args)\n"
    )
    if len(script.encode()) > MAX_SCRIPT_BYTES:
        raise InvalidError(
            f"train(func={func.__name__}): function and arguments take "
            f"{len(script.encode())} bytes; at most {MAX_SCRIPT_BYTES} fit in a "
            "command. Pass large data as a file path or storage URI instead"
        )
    return script


def trainer_command(script: str, torch: bool) -> list[str]:
    """The ``spec.trainer.command`` running ``script`` on every node (torchrun for torch)."""
    if torch:
        return ["torchrun", "--no-python", "python3", "-c", script]
    return ["python3", "-c", script]


def packages_key(packages: list[str]) -> str:
    """A stable directory name for one set of extra packages (shared by jobs needing it)."""
    return hashlib.sha256("\n".join(sorted(packages)).encode()).hexdigest()[:16]
