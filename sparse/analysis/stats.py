"""Multiple-comparison corrections for shuffle (permutation) tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..deprecation import renamed_keywords


def benjamini_hochberg(p_values: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg false discovery rate over all finite entries of ``p_values`` (any
    shape). Returns ``(q, reject)`` of the same shape: the BH-adjusted p-values (monotone,
    capped at 1) and ``q <= alpha``. NaN entries (tests not run) stay NaN and are not
    rejected, nor counted in the number of tests.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    p = np.asarray(p_values, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    vals = p[finite]
    m = vals.size
    if m:
        order = np.argsort(vals, kind="stable")
        ranked = vals[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = np.minimum(ranked, 1.0)
        q[finite] = adj
    reject = np.zeros(p.shape, dtype=bool)
    reject[finite] = q[finite] <= alpha
    return q, reject


@renamed_keywords(surrogates="null")
def max_statistic_p(observed: Any, null: Any, standardize: bool = True) -> np.ndarray:
    """Family-wise corrected p-values by the max statistic (Nichols & Holmes 2002).

    ``observed`` (..., F) holds the statistics of one family of F tests (e.g. the band pairs of
    one population pair) and ``null`` (..., F, S) their values on S shuffles, the same
    index ``s`` meaning the same shuffle in every test of the family. With
    ``standardize`` each test is first z-scored against its own null distribution, so
    tests on different scales compete fairly. The null distribution of the family is the
    maximum over F of each shuffle; ``p = (k + 1) / (S + 1)`` with ``k`` the number of
    shuffle maxima at or above the test's statistic. Tests whose observed value is NaN are
    left out of the family and get NaN. Returns (..., F).
    """
    obs = np.asarray(observed, dtype=np.float64)
    sur = np.asarray(null, dtype=np.float64)
    if sur.shape[:-1] != obs.shape:
        raise ValueError(f"null {sur.shape} must be observed {obs.shape} + (S,)")
    valid = np.isfinite(obs)
    if standardize:
        mean = sur.mean(axis=-1)
        std = sur.std(axis=-1)
        ok = std > 0
        safe = np.where(ok, std, 1.0)
        obs = np.where(ok, (obs - mean) / safe, 0.0)
        sur = np.where(ok[..., None], (sur - mean[..., None]) / safe[..., None], 0.0)
    sur = np.where(valid[..., None], sur, -np.inf)
    family_max = sur.max(axis=-2)  # (..., S)
    k = (family_max[..., None, :] >= obs[..., None]).sum(axis=-1)
    p = (k + 1.0) / (sur.shape[-1] + 1.0)
    return np.where(valid, p, np.nan)
