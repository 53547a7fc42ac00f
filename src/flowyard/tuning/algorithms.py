"""``build_engine``: the suggestion engine for an ExperimentSpec, by Katib algorithm name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowyard.errors import InvalidError
from flowyard.tuning.engine import EngineContext, SuggestionEngine
from flowyard.tuning.settings import ALGORITHM_SETTINGS, algorithm_causes, parse_settings
from flowyard.tuning.space import SearchSpace


def _engine_class(name: str) -> type[SuggestionEngine]:
    # Imported on demand: Optuna (and SciPy, torch for the GP sampler) load only when used.
    if name == "random":
        from flowyard.tuning.simple import RandomEngine

        return RandomEngine
    if name == "grid":
        from flowyard.tuning.simple import GridEngine

        return GridEngine
    if name == "sobol":
        from flowyard.tuning.simple import SobolEngine

        return SobolEngine
    if name == "hyperband":
        from flowyard.tuning.hyperband import HyperbandEngine

        return HyperbandEngine
    if name == "pbt":
        from flowyard.tuning.pbt import PbtEngine

        return PbtEngine
    from flowyard.tuning.optuna_engine import OptunaEngine

    return OptunaEngine


def build_engine(spec: Mapping[str, Any], *, uid: str = "", name: str = "") -> SuggestionEngine:
    """The engine for ``spec`` (an ExperimentSpec as admitted). ``uid`` seeds the random
    streams; ``name`` names pbt's trials. InvalidError if the algorithm part of the spec is
    invalid."""
    space = SearchSpace.from_spec(spec)
    causes = algorithm_causes(spec, space)
    if causes:
        raise InvalidError(
            "spec.algorithm is invalid: " + "; ".join(f"{c.field}: {c.message}" for c in causes),
            causes=causes,
        )
    algorithm = str(spec["algorithm"]["algorithmName"])
    settings = parse_settings(
        ALGORITHM_SETTINGS[algorithm], spec["algorithm"].get("algorithmSettings")
    )
    context = EngineContext(algorithm, space, spec, settings, uid, name)
    return _engine_class(algorithm)(context)
