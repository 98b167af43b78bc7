"""EEG band filters, Hilbert transform, population signals, waveform resampling."""

from __future__ import annotations

import numpy as np
import pytest

from sparse.analysis.signals import (
    EEG_BANDS,
    EmptyPopulationError,
    SignalTooShortError,
    band_analytic,
    band_filter,
    edge_samples,
    filter_bands,
    filter_length,
    hilbert_phase_amplitude,
    longest_filter,
    population_signal,
    require_samples,
    resolve_bands,
    samples_needed,
    waveform_to_rate,
)

BANDS = list(EEG_BANDS)


def _amplitude_through(fs: float, band: str, freq: float) -> float:
    """Amplitude of a unit sinusoid at ``freq`` after ``band``'s filter, away from the edges."""
    (b,) = resolve_bands([band])
    n_taps = filter_length(b, fs)
    n = 3 * n_taps + int(20 * fs / freq)
    t = np.arange(n) / fs
    y = band_filter(np.sin(2 * np.pi * freq * t + 0.3), fs, band)
    mid = y[n_taps : n - n_taps]
    return float(np.sqrt(2 * np.mean(mid**2)))


@pytest.mark.parametrize("fs", [500.0, 100.0])
def test_band_filters_pass_own_centre_and_reject_far_bands(fs: float) -> None:
    usable = [b for b in BANDS if EEG_BANDS[b][1] < fs / 2]
    assert usable == (BANDS if fs == 500.0 else BANDS[:4])
    for i, band in enumerate(usable):
        centre = sum(EEG_BANDS[band]) / 2
        assert _amplitude_through(fs, band, centre) >= 0.9, band
        for j, other in enumerate(usable):
            if abs(i - j) > 1:  # not a neighbour
                freq = sum(EEG_BANDS[other]) / 2
                gain = _amplitude_through(fs, band, freq)
                assert 20 * np.log10(gain) <= -20, (band, other, gain)


def test_filter_is_zero_phase() -> None:
    fs = 500.0
    t = np.arange(4000) / fs
    x = np.cos(2 * np.pi * 6 * t)
    y = band_filter(x, fs, "theta")
    mid = slice(1000, 3000)
    assert np.max(np.abs(y[mid] - x[mid])) < 0.02
    # batched: filters each row alike
    yy = band_filter(np.stack([x, 2 * x]), fs, "theta")
    np.testing.assert_allclose(yy[1], 2 * y, atol=1e-12)


def test_filter_order_follows_the_band() -> None:
    fs = 500.0
    lengths = [filter_length(b, fs) for b in resolve_bands(BANDS)]
    assert all(n % 2 == 1 for n in lengths)
    assert lengths == sorted(lengths, reverse=True)  # slower band, longer filter
    assert lengths[0] >= 3 * fs / 0.5  # delta: 3 cycles of 0.5 Hz
    assert filter_length(resolve_bands(["theta"])[0], 100.0) * 5 == pytest.approx(
        filter_length(resolve_bands(["theta"])[0], 500.0), abs=5)


def test_too_short_signal_is_reported_and_skipped() -> None:
    fs = 500.0
    x = np.random.default_rng(0).normal(size=1000)  # 2 s: too short for delta (6 s)
    with pytest.raises(SignalTooShortError, match="delta"):
        band_filter(x, fs, "delta")
    out, messages = filter_bands(x, fs)
    assert "delta" not in out and set(out) == set(BANDS[1:])
    assert any("delta" in m and "skipped" in m for m in messages)
    assert all(v.shape == x.shape for v in out.values())


def test_edge_trimming_rule() -> None:
    # a zero-phase filter of 2k+1 taps sees the padding in the first and last k samples;
    # trimming them needs 2 * taps - 1 samples (an interior at least as long as one edge + 1)
    assert [edge_samples(t) for t in (1, 3, 413)] == [0, 1, 206]
    assert samples_needed(413, trim_edges=True) == 825
    assert samples_needed(413, trim_edges=False) == 413
    theta, gamma = resolve_bands(["theta", "low_gamma"])
    assert longest_filter([gamma, theta], 500.0) == filter_length(theta, 500.0) == 413
    require_samples(825, 413, True, "a filter")  # just enough: no error
    with pytest.raises(SignalTooShortError,
                       match=r"^824 samples are too few for a filter and its edge margins "
                             r"\(825 needed\)$"):
        require_samples(824, 413, True, "a filter")
    with pytest.raises(SignalTooShortError, match=r"^412 samples are too few for x \(413 "):
        require_samples(412, 413, False, "x")


def test_band_analytic_is_filter_then_hilbert() -> None:
    x = np.random.default_rng(0).standard_normal((2, 900))
    phase, amp = band_analytic(x, 500.0, "theta")
    want = hilbert_phase_amplitude(band_filter(x, 500.0, "theta"))
    np.testing.assert_array_equal(phase, want[0])
    np.testing.assert_array_equal(amp, want[1])


def test_bands_above_nyquist_are_dropped_with_message() -> None:
    x = np.random.default_rng(0).normal(size=3000)
    out, messages = filter_bands(x, 100.0, ["theta", "low_gamma", "high_gamma"])
    assert list(out) == ["theta"]
    assert sum("Nyquist" in m for m in messages) == 2
    with pytest.raises(ValueError, match="Nyquist"):
        band_filter(x, 100.0, "high_gamma")


def test_hilbert_phase_and_amplitude_of_sinusoid() -> None:
    fs, f = 500.0, 10.0
    t = np.arange(2000) / fs
    phase, amp = hilbert_phase_amplitude(3.0 * np.cos(2 * np.pi * f * t))
    np.testing.assert_allclose(amp[100:-100], 3.0, atol=1e-6)
    expected = np.angle(np.exp(1j * 2 * np.pi * f * t))
    np.testing.assert_allclose(np.exp(1j * phase[100:-100]), np.exp(1j * expected[100:-100]),
                               atol=1e-6)


def test_population_signal_zscored_and_empty() -> None:
    rng = np.random.default_rng(0)
    spikes = (rng.random((500, 40)) < 0.05).astype(np.float32)
    s = population_signal(spikes)
    assert s.shape == (500,)
    assert abs(s.mean()) < 1e-9 and abs(s.std() - 1) < 1e-9
    assert population_signal(spikes, length=300).shape == (300,)
    with pytest.raises(EmptyPopulationError, match="no spikes"):
        population_signal(np.zeros((500, 40)))


def test_waveform_to_rate_is_anti_aliased() -> None:
    sr, dt = 16000.0, 2.0  # 16 kHz audio to a 500 Hz spike rate
    t = np.arange(int(2 * sr)) / sr
    low = np.sin(2 * np.pi * 100 * t)
    high = np.sin(2 * np.pi * 3000 * t)  # far above the new Nyquist (250 Hz)
    y_low = waveform_to_rate(low, sr, dt)
    y_high = waveform_to_rate(high, sr, dt)
    assert y_low.shape == (1000,)
    assert np.sqrt(2 * np.mean(y_low[50:-50] ** 2)) == pytest.approx(1.0, abs=0.02)
    # plain decimation would alias 3000 Hz onto 0 Hz at full amplitude
    assert np.sqrt(2 * np.mean(y_high[50:-50] ** 2)) < 0.01
    assert waveform_to_rate(low, sr, dt, n_steps=1200).shape == (1200,)
    assert waveform_to_rate(low, sr, dt, n_steps=800).shape == (800,)
    env = waveform_to_rate(0.5 * low, sr, dt, envelope=True)
    assert np.median(env) == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="NaN"):
        waveform_to_rate(np.array([0.0, np.nan]), sr, dt)
