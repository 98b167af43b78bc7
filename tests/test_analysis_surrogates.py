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


def test_cut_reverse_is_the_seeds_surrogate() -> None:
    a = np.arange(10.0)
    assert make_shuffle(a, 3, "cut_reverse").tolist() == [2, 1, 0, 9, 8, 7, 6, 5, 4, 3]
    assert make_shuffle(a, 3, "circular_shift").tolist() == [7, 8, 9, 0, 1, 2, 3, 4, 5, 6]
    for method in SHUFFLE_METHODS:
        batch = make_shuffles(a, [1, 3, 9], method)
        for row, c in zip(batch, [1, 3, 9], strict=True):
            assert row.tolist() == make_shuffle(a, c, method).tolist()
    with pytest.raises(ValueError, match="unknown surrogate method"):
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
    sur = np.arange(1.0, 1000.0)  # 999 surrogates: 1 .. 999
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
