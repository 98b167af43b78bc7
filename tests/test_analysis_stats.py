"""Benjamini-Hochberg FDR and the max-statistic correction."""

from __future__ import annotations

import numpy as np
import pytest

from sparse.analysis.stats import benjamini_hochberg, max_statistic_p


def test_benjamini_hochberg_by_hand() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    q, reject = benjamini_hochberg(p, alpha=0.05)
    # sorted: .005 .01 .03 .04 .5 -> * 5/rank: .025 .025 .05 .05 .5 (already monotone)
    np.testing.assert_allclose(q, [0.025, 0.05, 0.05, 0.025, 0.5])
    assert reject.tolist() == [True, True, True, True, False]
    q2, _ = benjamini_hochberg(np.array([0.02, 0.03]))
    np.testing.assert_allclose(q2, [0.03, 0.03])  # step-up monotonicity


def test_benjamini_hochberg_ignores_nan_and_keeps_shape() -> None:
    p = np.array([[0.01, np.nan], [0.02, 0.9]])
    q, reject = benjamini_hochberg(p)
    assert q.shape == (2, 2) and np.isnan(q[0, 1]) and not reject[0, 1]
    np.testing.assert_allclose(q[~np.isnan(p)], [0.03, 0.03, 0.9])
    with pytest.raises(ValueError):
        benjamini_hochberg(p, alpha=0)


def test_max_statistic_controls_family_and_is_conservative() -> None:
    rng = np.random.default_rng(0)
    sur = rng.normal(size=(8, 999))
    obs = rng.normal(size=8)
    obs[2] = 10.0
    p_max = max_statistic_p(obs, sur)
    k = (sur >= obs[:, None]).sum(axis=1)
    p_raw = (k + 1) / 1000
    assert np.all(p_max >= p_raw - 1e-12)
    assert p_max[2] == pytest.approx(1 / 1000)
    # a family of one: the max statistic is the plain surrogate test
    np.testing.assert_allclose(max_statistic_p(obs[:1], sur[:1]), p_raw[:1])
    # NaN observations leave the family
    obs_nan = obs.copy()
    obs_nan[5] = np.nan
    p_nan = max_statistic_p(obs_nan, sur)
    assert np.isnan(p_nan[5]) and np.all(np.isfinite(np.delete(p_nan, 5)))


def test_max_statistic_family_wise_rate_under_null() -> None:
    rng = np.random.default_rng(1)
    n_fam, f, s = 400, 6, 199
    sur = rng.normal(size=(n_fam, f, s + 1))
    obs, sur = sur[..., 0], sur[..., 1:]  # observed exchangeable with its surrogates
    p = max_statistic_p(obs, sur)
    fwer = np.mean((p <= 0.05).any(axis=1))
    assert fwer <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / n_fam)
