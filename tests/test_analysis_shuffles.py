"""Vectorised shuffles equal the per-shuffle loop; seeding; p-values."""

from __future__ import annotations

import numpy as np
import pytest

from sparse.analysis.shuffles import (
    SHUFFLE_METHODS,
    make_shuffle,
    make_shuffles,
    null_p_value,
    observed_pac,
    shuffle_cuts,
    shuffled_pac,
    shuffled_pac_loop,
)


def _data(seed: int = 0, n: int = 700) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    phase = rng.uniform(-np.pi, np.pi, (3, n))
    amp = rng.gamma(2.0, 1.0, (2, n)) * (1 + 0.5 * np.cos(phase[:2]))
    return phase, amp


def test_cut_reverse_is_the_original_shuffle() -> None:
    a = np.arange(10.0)
    assert make_shuffle(a, 3, "cut_reverse").tolist() == [2, 1, 0, 9, 8, 7, 6, 5, 4, 3]
    assert make_shuffle(a, 3, "circular_shift").tolist() == [7, 8, 9, 0, 1, 2, 3, 4, 5, 6]
    for method in SHUFFLE_METHODS:
        batch = make_shuffles(a, [1, 3, 9], method)
        for row, c in zip(batch, [1, 3, 9], strict=True):
            assert row.tolist() == make_shuffle(a, c, method).tolist()
    with pytest.raises(ValueError, match="unknown shuffle method"):
        make_shuffle(a, 3, "shuffle")


@pytest.mark.parametrize("method", SHUFFLE_METHODS)
def test_vectorised_equals_loop_reference(method: str) -> None:
    phase, amp = _data()
    cuts = shuffle_cuts(phase.shape[-1], 300, seed=7, stream=(0, 2))
    fast = shuffled_pac(phase, amp, cuts, method)
    assert fast["mi"].shape == fast["mvl"].shape == (3, 2, 300)
    for i in range(3):
        for j in range(2):
            ref = shuffled_pac_loop(phase[i], amp[j], cuts, method)
            np.testing.assert_allclose(fast["mi"][i, j], ref["mi"], rtol=1e-9, atol=1e-13)
            np.testing.assert_allclose(fast["mvl"][i, j], ref["mvl"], rtol=1e-9, atol=1e-13)
            obs = observed_pac(phase[i], amp[j])
            p_fast = null_p_value(obs["mi"], fast["mi"][i, j])
            assert p_fast == null_p_value(obs["mi"], ref["mi"])
    one = shuffled_pac(phase[0], amp[1], cuts, method, max_block_bytes=1)  # tiny blocks
    np.testing.assert_allclose(one["mi"], fast["mi"][0, 1], rtol=1e-12)


def test_seeding_is_reproducible_and_streams_differ() -> None:
    a = shuffle_cuts(1000, 500, seed=3, stream=(0, 4))
    assert np.array_equal(a, shuffle_cuts(1000, 500, seed=3, stream=(0, 4)))
    assert not np.array_equal(a, shuffle_cuts(1000, 500, seed=3, stream=(1, 4)))
    assert not np.array_equal(a, shuffle_cuts(1000, 500, seed=4, stream=(0, 4)))
    assert a.min() >= 1 and a.max() <= 999
    with pytest.raises(ValueError):
        shuffle_cuts(1, 10)


def test_p_value_is_never_zero() -> None:
    sur = np.arange(1.0, 1000.0)  # 999 shuffles: 1 .. 999
    assert null_p_value(2000.0, sur) == pytest.approx(1 / 1000)
    assert null_p_value(-1.0, sur) == 1.0
    assert null_p_value(500.0, sur) == pytest.approx((500 + 1) / 1000)  # ties count
    assert np.isnan(null_p_value(np.nan, sur))


@pytest.mark.parametrize("old,new", [
    ("SURROGATE_METHODS", SHUFFLE_METHODS), ("make_surrogate", make_shuffle),
    ("make_surrogates", make_shuffles), ("surrogate_cuts", shuffle_cuts),
    ("surrogate_p_value", null_p_value), ("surrogate_pac", shuffled_pac),
    ("surrogate_pac_loop", shuffled_pac_loop),
])
def test_former_names_are_deprecated_aliases(old, new) -> None:
    import sparse.analysis
    import sparse.analysis.surrogates as former

    with pytest.warns(DeprecationWarning, match=rf"surrogates\.{old} is deprecated; use "
                                                r"sparse\.analysis\.shuffles\."):
        assert getattr(former, old) is new
    if old != "make_surrogates":  # the package exported the others
        with pytest.warns(DeprecationWarning, match="sparse.analysis.shuffles"):
            assert getattr(sparse.analysis, old) is new
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        former.nothing  # noqa: B018


# ------------------------------------------------ former keyword n_surrogates (one release)

def test_shuffle_cuts_former_keyword_warns_and_draws_the_same_cuts() -> None:
    with pytest.warns(FutureWarning, match=r"shuffle_cuts\(n_surrogates=\.\.\.\) is deprecated; "
                                           r"use shuffle_cuts\(n_shuffles=\.\.\.\)"):
        former = shuffle_cuts(900, n_surrogates=40, seed=2)
    np.testing.assert_array_equal(former, shuffle_cuts(900, n_shuffles=40, seed=2))
    with pytest.raises(TypeError, match="both shuffle_cuts.*give only n_shuffles"):
        shuffle_cuts(900, n_surrogates=40, n_shuffles=40)


def test_pac_significance_former_keyword_warns_and_gives_the_same_table() -> None:
    from sparse.analysis.significance import pac_significance

    rng = np.random.default_rng(3)
    pops = {name: [(rng.random((1500, 4)) < 0.1).astype(float)] for name in ("a", "b")}
    bands = {"phase_bands": ("theta",), "amplitude_bands": ("low_gamma",)}
    with pytest.warns(FutureWarning, match=r"pac_significance\(n_surrogates=.*n_shuffles"):
        former = pac_significance(pops, 2.0, n_surrogates=30, include_all=False, **bands)
    new = pac_significance(pops, 2.0, n_shuffles=30, include_all=False, **bands)
    assert former.params == new.params and former.params["n_shuffles"] == 30
    for name in new.column_names:
        np.testing.assert_array_equal(former.columns[name], new.columns[name])


def test_pac_pair_test_former_keyword_and_attribute_warn() -> None:
    from sparse.analysis.significance import pac_pair_test

    phase, amp = _data(seed=4, n=1500)
    with pytest.warns(FutureWarning, match=r"pac_pair_test\(n_surrogates=.*n_shuffles"):
        test = pac_pair_test(phase[0], amp[0], 2.0, n_surrogates=25)
    assert test.shuffled_pac["mi"].shape == (25,)
    with pytest.warns(DeprecationWarning, match=r"PairTest\.surrogates is deprecated; use "
                                                r"PairTest\.shuffled_pac"):
        assert test.surrogates is test.shuffled_pac


@pytest.mark.parametrize("cls_name", ["PacOptions", "AnalyzeOptions"])
def test_options_former_field_warns_as_keyword_and_attribute(cls_name) -> None:
    import dataclasses

    import sparse.analysis.options as options

    cls = getattr(options, cls_name)
    with pytest.warns(FutureWarning, match=rf"{cls_name}\(n_surrogates=\.\.\.\) is deprecated; "
                                           rf"use {cls_name}\(n_shuffles=\.\.\.\)"):
        former = cls(n_surrogates=7)
    assert former == cls(n_shuffles=7)
    assert dataclasses.replace(former, seed=1).n_shuffles == 7  # replace sees only new names
    with pytest.warns(DeprecationWarning, match=rf"{cls_name}\.n_surrogates is deprecated"):
        assert former.n_surrogates == 7
    with pytest.raises(TypeError, match="give only n_shuffles"):
        cls(n_surrogates=7, n_shuffles=7)


def test_former_default_constant_warns() -> None:
    import sparse.analysis.options as options

    with pytest.warns(DeprecationWarning, match=r"options\.DEFAULT_SURROGATES is deprecated; "
                                                r"use sparse\.analysis\.options\.DEFAULT_SHUFF"):
        assert options.DEFAULT_SURROGATES == options.DEFAULT_SHUFFLES == 1000


def test_options_from_keywords_former_keyword_warns() -> None:
    from sparse.analysis.options import options_from_keywords

    with pytest.warns(FutureWarning, match=r"options_from_keywords\(n_surrogates="):
        assert options_from_keywords(n_surrogates=9) == options_from_keywords(n_shuffles=9)


@pytest.mark.parametrize("path", ["sparse.analysis.run.run_analysis",
                                  "sparse.analysis.analyze.analyze_model",
                                  "sparse.analysis.analyze.analyze_checkpoint",
                                  "sparse.analysis.analyze.analyze_run"])
def test_analysis_entry_points_take_the_former_keyword(path) -> None:
    """Each entry point translates ``n_surrogates`` before it starts (shown by its refusal of
    both spellings at once, which comes before any work)."""
    import importlib
    import inspect

    module, name = path.rsplit(".", 1)
    fn = getattr(importlib.import_module(module), name)
    assert "n_surrogates" not in str(inspect.signature(fn))
    with pytest.raises(TypeError, match=rf"both {name}\(n_surrogates=\.\.\.\) and "
                                        rf"{name}\(n_shuffles=\.\.\.\) are given"):
        fn(n_surrogates=5, n_shuffles=5)


def test_analyze_run_former_keyword_warns_and_runs_as_the_new(tmp_path) -> None:
    from sparse.analysis.analyze import analyze_run

    with pytest.warns(FutureWarning, match=r"analyze_run\(n_surrogates="), \
            pytest.raises(Exception) as former:
        analyze_run(tmp_path / "missing", n_surrogates=5)
    with pytest.raises(Exception) as new:
        analyze_run(tmp_path / "missing", n_shuffles=5)
    assert type(former.value) is type(new.value) and str(former.value) == str(new.value)


@pytest.mark.parametrize("fn_name", ["null_p_value", "null_zscore", "max_statistic_p"])
def test_null_distribution_former_keyword_warns(fn_name) -> None:
    import sparse.analysis.shuffles as shuffles
    import sparse.analysis.stats as stats

    fn = getattr(shuffles, fn_name, None) or getattr(stats, fn_name)
    obs, null = np.array([0.5, 2.0]), np.arange(8.0).reshape(2, 4) / 4
    with pytest.warns(FutureWarning, match=rf"{fn_name}\(surrogates=.*{fn_name}\(null="):
        former = fn(obs, surrogates=null)
    np.testing.assert_array_equal(np.asarray(former), np.asarray(fn(obs, null=null)))
