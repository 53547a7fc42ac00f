"""Finding the model file a runtime reads inside a model directory."""

from __future__ import annotations

from pathlib import Path

from flowyard.errors import InvalidError


def find_model_file(model_dir: str, runtime: str, names: list[str], suffixes: list[str]) -> Path:
    """``model_dir`` itself when it is a file, else the first of ``names`` in it, else the only
    file in it with one of ``suffixes``. Raises InvalidError naming what was expected."""
    root = Path(model_dir)
    if root.is_file():
        return root
    if not root.is_dir():
        raise InvalidError(f"model directory {model_dir} does not exist")
    for name in names:
        if (root / name).is_file():
            return root / name
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes)
    if len(found) == 1:
        return found[0]
    what = "several" if found else "no"
    raise InvalidError(
        f"runtime {runtime} found {what} model files in {model_dir}: expected one of "
        f"{', '.join(names)} (or a single *{' / *'.join(suffixes)} file)"
    )


def feature_shape(n_features: int | None) -> list[int]:
    return [-1, int(n_features)] if n_features else [-1, -1]
