"""Tort MI and Canolty MVL: definitions, edge cases, and equality with tensorpac."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from sparse.analysis.pac import (
    N_BINS,
    binned_amplitude_sums,
    comodulogram,
    mean_vector_length,
    modulation_index,
    phase_bin_indices,
    phase_binned_amplitude,
)

from .helpers import reference_library


def _coupled(rng: np.random.Generator, n: int, depth: float) -> tuple[np.ndarray, np.ndarray]:
    phase = rng.uniform(-np.pi, np.pi, n)
    amp = rng.gamma(2.0, 1.0, n) * (1 + depth * np.cos(phase - 0.7))
    return phase, amp


def test_mi_and_mvl_equal_tensorpac() -> None:
    tensorpac = reference_library("tensorpac", "pip install -e .[test]")
    logging.getLogger("tensorpac").setLevel(logging.ERROR)  # its MVL normalisation advice
    rng = np.random.default_rng(0)
    cases = [_coupled(rng, n, d) for n, d in [(500, 0.0), (1000, 0.3), (1500, 0.9), (777, 1.0)]]
    # a phase confined to a few bins: tensorpac drops empty bins, as 0 log 0 = 0 does here
    ph = rng.uniform(-np.pi, -1.0, 800)
    cases.append((ph, rng.random(800) * (2 + np.sin(ph))))
    for phase, amp in cases:
        ref_mi = tensorpac.Pac(idpac=(2, 0, 0), n_bins=N_BINS, verbose=False).fit(
            phase[None, None], amp[None, None])
        ref_mvl = tensorpac.Pac(idpac=(1, 0, 0), verbose=False).fit(
            phase[None, None], amp[None, None])
        assert abs(float(np.squeeze(ref_mi)) - float(modulation_index(phase, amp))) < 1e-6
        assert abs(float(np.squeeze(ref_mvl)) - float(mean_vector_length(phase, amp))) < 1e-6


def test_mi_definition_and_range() -> None:
    rng = np.random.default_rng(1)
    phase = rng.uniform(-np.pi, np.pi, 5000)
    amp = rng.random(5000)
    sums, counts = binned_amplitude_sums(phase, amp)
    p = (sums / counts) / (sums / counts).sum()
    expected = (math.log(N_BINS) + (p * np.log(p)).sum()) / math.log(N_BINS)
    assert modulation_index(phase, amp) == pytest.approx(expected, rel=1e-12)
    assert 0 <= modulation_index(phase, amp) < 0.01
    # all amplitude in one bin -> MI = 1
    amp1 = np.where(phase_bin_indices(phase) == 3, 1.0, 0.0)
    assert modulation_index(phase, amp1) == pytest.approx(1.0)
    # constant amplitude -> MI = 0
    assert modulation_index(phase, np.ones(5000)) == pytest.approx(0.0, abs=1e-12)


def test_empty_phase_bins_give_finite_mi() -> None:
    rng = np.random.default_rng(2)
    phase = rng.uniform(0.0, 1.0, 300)  # 3 of 18 bins occupied
    amp = rng.random(300)
    mi = modulation_index(phase, amp)
    assert np.isfinite(mi) and 0 < mi <= 1
    binned, centres = phase_binned_amplitude(phase, amp)
    assert np.isnan(binned).sum() == 15 and centres.shape == (18,)
    assert modulation_index(phase, np.zeros(300)) == 0.0  # no amplitude at all: finite
    assert np.isfinite(modulation_index(np.full(10, np.pi), np.ones(10)))
    with pytest.raises(ValueError, match="negative"):
        modulation_index(phase, amp - 0.5)


def test_mvl_definition_and_broadcasting() -> None:
    rng = np.random.default_rng(3)
    phase = rng.uniform(-np.pi, np.pi, (4, 1, 600))
    amp = rng.random((1, 3, 600))
    mvl = mean_vector_length(phase, amp)
    assert mvl.shape == (4, 3)
    i, j = 2, 1
    direct = abs(np.mean(amp[0, j] * np.exp(1j * phase[i, 0])))
    assert mvl[i, j] == pytest.approx(direct)
    mi = modulation_index(phase, amp)
    assert mi.shape == (4, 3)
    assert mi[i, j] == pytest.approx(modulation_index(phase[i, 0], amp[0, j]))


def test_phase_bins_wrap_and_edges() -> None:
    idx = phase_bin_indices(np.array([-np.pi, np.pi, 0.0, 3 * np.pi / 2, -1e-12]))
    assert idx.tolist() == [0, 17, 9, 4, 8]
    with pytest.raises(ValueError, match="NaN"):
        phase_bin_indices(np.array([0.0, np.nan]))


def test_comodulogram_finds_planted_pair() -> None:
    fs, n = 500.0, 5000
    t = np.arange(n) / fs
    rng = np.random.default_rng(4)
    slow = np.sin(2 * np.pi * 6 * t)
    x = slow + (1 + slow) * 0.5 * np.sin(2 * np.pi * 60 * t) + 0.2 * rng.normal(size=n)
    pf = np.array([4.0, 6.0, 10.0, 14.0])
    af = np.array([40.0, 60.0, 100.0, 240.0])
    mi, messages = comodulogram(x, x, fs, pf, af, phase_width=2.0, amplitude_width=20.0)
    assert mi.shape == (4, 4)
    assert np.isnan(mi[3]).all() and any("Nyquist" in m for m in messages)
    assert np.nanargmax(mi) == np.ravel_multi_index((1, 1), mi.shape)
