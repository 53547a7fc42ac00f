"""Training runtimes flowyard ships (data): the upstream default ``torch-distributed``
ClusterTrainingRuntime, applied at startup by :func:`ensure_default_runtimes`."""

from __future__ import annotations

from importlib import resources as importlib_resources
from typing import Any

import yaml

from flowyard.errors import AlreadyExistsError
from flowyard.resources.meta import Resource

RUNTIME_FILES = ("torch_distributed.yaml",)


def default_runtimes() -> list[Resource]:
    """The shipped runtimes as fresh resource dicts."""
    out: list[Resource] = []
    for name in RUNTIME_FILES:
        text = importlib_resources.files(__name__).joinpath(name).read_text()
        out.extend(doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict))
    return out


def ensure_default_runtimes(store: Any) -> list[str]:
    """Admit and create each shipped runtime that is not stored yet (a user's edited copy is
    kept). Returns the names created."""
    from flowyard.resources.admission import admit
    from flowyard.training.kinds import register_kinds

    register_kinds()
    created = []
    for runtime in default_runtimes():
        admit(runtime)
        try:
            store.create(runtime)
        except AlreadyExistsError:
            continue
        created.append(runtime["metadata"]["name"])
    return created
