"""Deprecated home of :mod:`sparse.analysis.shuffles` (kept for one release).

"Surrogate" in this project is the surrogate gradient of the spiking neurons
(:mod:`sparse.surrogate`); the shuffled amplitude series of the PAC significance test live in
:mod:`sparse.analysis.shuffles`. Every former name here still works and warns with its new one.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..deprecation import warn_renamed

__all__: list[str] = []

#: former name -> name in :mod:`sparse.analysis.shuffles`
RENAMED: dict[str, str] = {
    "SURROGATE_METHODS": "SHUFFLE_METHODS",
    "METRICS": "METRICS",
    "default_margin": "default_margin",
    "make_surrogate": "make_shuffle",
    "make_surrogates": "make_shuffles",
    "observed_pac": "observed_pac",
    "surrogate_cuts": "shuffle_cuts",
    "surrogate_p_value": "null_p_value",
    "surrogate_pac": "shuffled_pac",
    "surrogate_pac_loop": "shuffled_pac_loop",
    "surrogate_zscore": "null_zscore",
}


def __getattr__(name: str) -> Any:
    if name not in RENAMED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warn_renamed(f"sparse.analysis.surrogates.{name}", f"sparse.analysis.shuffles.{RENAMED[name]}")
    return getattr(importlib.import_module("sparse.analysis.shuffles"), RENAMED[name])
