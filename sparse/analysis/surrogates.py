"""Deprecated home of :mod:`sparse.analysis.shuffles` (kept for one release).

"Surrogate" in this project is the surrogate gradient of the spiking neurons
(:mod:`sparse.surrogate`); the shuffled amplitude series of the PAC significance test live in
:mod:`sparse.analysis.shuffles`. Every former name here still works and warns with its new one.
"""

from __future__ import annotations

from ..deprecation import moved_names

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


__getattr__ = moved_names(__name__, {former: ("sparse.analysis.shuffles", new)
                                     for former, new in RENAMED.items()})
