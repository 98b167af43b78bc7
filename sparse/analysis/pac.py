"""Phase-amplitude coupling measures: Tort's modulation index, Canolty's mean vector length,
the phase-binned amplitude they rest on, and the comodulogram.

Conventions (shared by every function here and by :mod:`sparse.analysis.surrogates`):

- phases are in radians; values outside ``[-pi, pi]`` are wrapped into it;
- the ``n_bins`` phase bins are ``[-pi + j w, -pi + (j + 1) w)`` with ``w = 2 pi / n_bins``,
  the last one closed at ``pi``;
- Tort et al. (2010): ``P_j`` = mean amplitude in bin ``j`` divided by the sum of those means
  over the non-empty bins, ``H = -sum_j P_j log P_j`` with ``0 log 0 = 0``, and
  ``MI = (log N - H) / log N``. An empty bin contributes nothing, so MI stays finite; an
  all-zero amplitude gives MI = 0;
- Canolty et al. (2006): ``MVL = |mean_t A(t) exp(i phi(t))|`` (in the amplitude's unit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .signals import (
    DEFAULT_CYCLES,
    Band,
    SignalTooShortError,
    as_numpy,
    band_filter,
    hilbert_phase_amplitude,
)

#: Tort's number of phase bins.
N_BINS = 18


def _check_bins(n_bins: int) -> int:
    n_bins = int(n_bins)
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    return n_bins


def phase_bin_edges(n_bins: int = N_BINS) -> np.ndarray:
    """Edges (n_bins + 1,) of the phase bins, from -pi to pi, in radians."""
    return np.linspace(-np.pi, np.pi, _check_bins(n_bins) + 1)


def phase_bin_indices(phase: Any, n_bins: int = N_BINS) -> np.ndarray:
    """Bin index in ``[0, n_bins)`` of every phase value; same shape as ``phase`` (int64)."""
    n_bins = _check_bins(n_bins)
    phi = as_numpy(phase)
    if not np.all(np.isfinite(phi)):
        raise ValueError("phase contains NaN or infinite values")
    outside = (phi < -np.pi) | (phi > np.pi)
    if np.any(outside):
        phi = np.where(outside, np.mod(phi + np.pi, 2 * np.pi) - np.pi, phi)
    idx = np.digitize(phi, phase_bin_edges(n_bins)) - 1
    return np.clip(idx, 0, n_bins - 1).astype(np.int64)


def binned_amplitude_sums(
    phase: Any, amplitude: Any, n_bins: int = N_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of the amplitude and number of samples in each phase bin.

    ``phase`` and ``amplitude`` (..., T) broadcast together. Returns ``(sums, counts)``, both of
    shape (..., n_bins) (float64).
    """
    n_bins = _check_bins(n_bins)
    phi = as_numpy(phase)
    amp = as_numpy(amplitude)
    phi, amp = np.broadcast_arrays(phi, amp)
    lead = phi.shape[:-1]
    n_rows = int(np.prod(lead, dtype=np.int64))
    bins = phase_bin_indices(phi, n_bins).reshape(n_rows, -1)
    flat = (np.arange(n_rows)[:, None] * n_bins + bins).ravel()
    size = n_rows * n_bins
    sums = np.bincount(flat, weights=amp.reshape(n_rows, -1).ravel(), minlength=size)
    counts = np.bincount(flat, minlength=size).astype(np.float64)
    return sums.reshape(*lead, n_bins), counts.reshape(*lead, n_bins)


def phase_binned_amplitude(
    phase: Any, amplitude: Any, n_bins: int = N_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Mean amplitude per phase bin (..., n_bins), NaN in empty bins, and the bin centres
    (n_bins,) in radians."""
    sums, counts = binned_amplitude_sums(phase, amplitude, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), np.nan)
    edges = phase_bin_edges(n_bins)
    return mean, 0.5 * (edges[:-1] + edges[1:])


def modulation_index_from_sums(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Tort MI from per-bin amplitude sums and counts (..., n_bins); returns (...,).

    Empty bins (count 0) and bins with zero amplitude contribute ``0 log 0 = 0``; an all-zero
    amplitude gives 0.
    """
    sums = np.asarray(sums, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    n_bins = sums.shape[-1]
    nonempty = counts > 0
    means = np.where(nonempty, sums / np.where(nonempty, counts, 1.0), 0.0)
    total = means.sum(axis=-1, keepdims=True)
    safe_total = np.where(total > 0, total, 1.0)
    p = means / safe_total
    positive = p > 0
    plogp = np.where(positive, p * np.log(np.where(positive, p, 1.0)), 0.0)
    entropy = -plogp.sum(axis=-1)
    log_n = math.log(n_bins)
    mi = (log_n - entropy) / log_n
    return np.where(total[..., 0] > 0, mi, 0.0)


def modulation_index(phase: Any, amplitude: Any, n_bins: int = N_BINS) -> np.ndarray:
    """Tort's modulation index of ``amplitude`` (..., T, non-negative) against ``phase``
    (..., T, radians); the two broadcast. Returns (...,) in [0, 1] (float64).

    Raises ``ValueError`` for negative amplitudes (MI needs an amplitude distribution).
    """
    amp = as_numpy(amplitude)
    if np.any(amp < 0):
        raise ValueError("amplitude has negative values; pass an amplitude envelope (>= 0)")
    return modulation_index_from_sums(*binned_amplitude_sums(phase, amp, n_bins))


def mean_vector_length(phase: Any, amplitude: Any) -> np.ndarray:
    """Canolty's mean vector length ``|mean_t A exp(i phi)|`` of ``amplitude`` (..., T)
    against ``phase`` (..., T, radians); they broadcast. Returns (...,), amplitude units."""
    phi = as_numpy(phase)
    amp = as_numpy(amplitude)
    phi, amp = np.broadcast_arrays(phi, amp)
    z = (amp * np.exp(1j * phi)).mean(axis=-1)
    return np.abs(z)


def comodulogram(
    phase_signal: Any,
    amplitude_signal: Any,
    fs: float,
    phase_freqs: Sequence[float] | np.ndarray,
    amplitude_freqs: Sequence[float] | np.ndarray,
    phase_width: float = 2.0,
    amplitude_width: float | None = None,
    n_bins: int = N_BINS,
    n_cycles: float = DEFAULT_CYCLES,
) -> tuple[np.ndarray, list[str]]:
    """Tort MI over a grid of phase x amplitude frequencies (Tort et al. 2010, Fig. 3).

    ``phase_signal`` and ``amplitude_signal`` are (T,) signals sampled at ``fs`` Hz (the same
    signal for within-population coupling). Each phase frequency ``f`` is filtered in
    ``[f - phase_width / 2, f + phase_width / 2]``; each amplitude frequency ``g`` in
    ``[g - w / 2, g + w / 2]`` with ``w = amplitude_width`` or, by default, twice the highest
    phase frequency (so the amplitude band holds the side bands of the modulation). Returns
    ``(mi, messages)`` with ``mi`` of shape (n_amplitude_freqs, n_phase_freqs) and NaN for
    cells whose band reaches Nyquist or whose filter is longer than the signal (described in
    ``messages``).
    """
    x_phase = as_numpy(phase_signal)
    x_amp = as_numpy(amplitude_signal)
    if x_phase.ndim != 1 or x_amp.ndim != 1 or x_phase.shape != x_amp.shape:
        raise ValueError(
            f"phase and amplitude signals must be (T,) of equal length, got {x_phase.shape} "
            f"and {x_amp.shape}"
        )
    pf = np.asarray(phase_freqs, dtype=np.float64)
    af = np.asarray(amplitude_freqs, dtype=np.float64)
    if amplitude_width is None:
        amplitude_width = 2.0 * float(pf.max())
    nyquist = fs / 2.0
    messages: list[str] = []

    def analytic(x: np.ndarray, centre: float, width: float, want: str) -> np.ndarray | None:
        low, high = centre - width / 2.0, centre + width / 2.0
        band = Band(f"{centre:g} Hz", max(low, 1e-3), high)
        if high >= nyquist:
            messages.append(f"comodulogram: band {band} reaches Nyquist {nyquist:g} Hz: skipped")
            return None
        try:
            y = band_filter(x, fs, band, n_cycles)
        except SignalTooShortError as err:
            messages.append(f"comodulogram: {err}: skipped")
            return None
        phase, amp = hilbert_phase_amplitude(y)
        return phase if want == "phase" else amp

    phases = [analytic(x_phase, f, phase_width, "phase") for f in pf]
    amps = [analytic(x_amp, g, amplitude_width, "amp") for g in af]
    mi = np.full((af.size, pf.size), np.nan)
    ok_p = [i for i, p in enumerate(phases) if p is not None]
    ok_a = [j for j, a in enumerate(amps) if a is not None]
    if ok_p and ok_a:
        ph = np.stack([phases[i] for i in ok_p])  # (P, T)
        am = np.stack([amps[j] for j in ok_a])  # (A, T)
        vals = modulation_index(ph[None, :, :], am[:, None, :], n_bins)  # (A, P)
        mi[np.ix_(ok_a, ok_p)] = vals
    return mi, messages
