"""Phase-amplitude coupling measures: Tort's modulation index, Canolty's mean vector length,
the phase-binned amplitude they rest on, and the comodulogram.

Conventions (shared by every function here and by :mod:`sparse.analysis.shuffles`):

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .signals import (
    DEFAULT_CYCLES,
    Band,
    SignalTooShortError,
    as_numpy,
    band_analytic,
    band_pair,
    edge_samples,
    filter_length,
    longest_filter,
    require_samples,
    samples_needed,
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
            phase, amp = band_analytic(x, fs, band, n_cycles)
        except SignalTooShortError as err:
            messages.append(f"comodulogram: {err}: skipped")
            return None
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


@dataclass
class PhaseAmplitudeMap:
    """Mean amplitude by phase bin of the phase band, for amplitude frequencies 1 Hz apart
    (see :func:`phase_amplitude_map`).

    Shapes: ``frequencies`` (F,) row centres in Hz; ``passbands`` (F, 2) each row's band in
    Hz; ``bin_edges`` (n_bins + 1,) in radians; ``mean_amplitude`` (F, n_bins), the mean
    Hilbert amplitude in each phase bin (the unit of the amplitude signal; NaN for a row that
    could not be computed, see ``notes``, or an empty bin). ``edge`` samples were dropped at
    each end, leaving ``n_analysed``.
    """

    phase_band: Band
    amplitude_band: Band
    frequencies: np.ndarray
    passbands: np.ndarray
    bin_edges: np.ndarray
    mean_amplitude: np.ndarray
    width_hz: float
    fs: float
    edge: int
    n_analysed: int
    notes: list[str] = field(default_factory=list)

    @property
    def bin_centres(self) -> np.ndarray:
        """Centres (n_bins,) of the phase bins in radians."""
        return 0.5 * (self.bin_edges[:-1] + self.bin_edges[1:])

    @property
    def relative(self) -> np.ndarray:
        """(F, n_bins): each row's mean amplitude divided by its mean over the bins (1 = the
        amplitude does not depend on the phase; ``n_bins`` times Tort's distribution P)."""
        m = self.mean_amplitude
        ok = np.isfinite(m)
        row_sum = np.where(ok, m, 0.0).sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):  # rows not computed stay NaN
            return m / (row_sum / ok.sum(axis=1, keepdims=True))

    def to_json(self) -> dict[str, Any]:
        """The map as plain JSON values (NaN as null)."""
        def plain(a: np.ndarray) -> Any:
            return [plain(x) for x in a] if a.ndim > 1 else [
                None if not math.isfinite(v) else float(v) for v in a.tolist()]

        return {
            "phase_band": [self.phase_band.name, self.phase_band.low, self.phase_band.high],
            "amplitude_band": [self.amplitude_band.name, self.amplitude_band.low,
                               self.amplitude_band.high],
            "sampling_rate_hz": self.fs, "row_width_hz": self.width_hz,
            "edge_samples": self.edge, "n_analysed": self.n_analysed,
            "frequencies_hz": plain(self.frequencies), "passbands_hz": plain(self.passbands),
            "phase_bin_edges_rad": plain(self.bin_edges),
            "mean_amplitude": plain(self.mean_amplitude), "relative": plain(self.relative),
            "notes": list(self.notes),
        }


def _map_rows(freqs: np.ndarray, passbands: np.ndarray, pb: Band, fs: float, n: int,
              n_cycles: float, trim_edges: bool) -> tuple[list[tuple[int, Band]], list[str]]:
    """The rows of :func:`phase_amplitude_map` that can be computed, as (row index, band),
    and a note for each that cannot (a row's filter needs :func:`samples_needed` samples)."""
    nyquist = fs / 2.0
    notes: list[str] = []
    rows: list[tuple[int, Band]] = []
    for i, (lo, hi) in enumerate(passbands):
        name = f"row {freqs[i]:g} Hz ({lo:g}-{hi:g} Hz)"
        if lo < pb.high:
            notes.append(f"{name}: reaches into the phase band {pb}: not computed")
        elif hi >= nyquist:
            notes.append(f"{name}: reaches the Nyquist frequency {nyquist:g} Hz: not computed")
        else:
            band = Band(f"{freqs[i]:g} Hz", float(lo), float(hi))
            taps = filter_length(band, fs, n_cycles)
            need = samples_needed(taps, trim_edges)
            if n < need:
                notes.append(f"{name}: its {taps}-tap filter needs {need} samples, the "
                             f"signal has {n}: not computed")
            else:
                rows.append((i, band))
    return rows, notes


def phase_amplitude_map(
    phase_signal: Any,
    amplitude_signal: Any,
    fs: float,
    phase_band: str | Band = "theta",
    amplitude_band: str | Band = "low_gamma",
    *,
    step_hz: float = 1.0,
    width_hz: float | None = None,
    n_bins: int = N_BINS,
    n_cycles: float = DEFAULT_CYCLES,
    trim_edges: bool = True,
) -> PhaseAmplitudeMap:
    """Mean amplitude by phase bin against amplitude frequency (the original SPARSE code's
    phase-frequency figure): rows ``f`` every ``step_hz`` from the amplitude band's low to its
    high edge, columns the ``n_bins`` phase bins of ``phase_band``.

    ``phase_signal`` and ``amplitude_signal`` are (T,) signals sampled at ``fs`` Hz (e.g.
    population signals). The phase is that of ``phase_signal`` filtered in ``phase_band``
    (zero-phase FIR, Hilbert transform); row ``f`` is the Hilbert amplitude of
    ``amplitude_signal`` filtered in ``[f - w / 2, f + w / 2]`` with ``w = width_hz``, by
    default twice the phase band's upper edge. The rows are 1 Hz apart but not 1 Hz wide: an
    envelope can only follow a rhythm of frequency ``fp`` if its band holds the side bands
    ``f +- fp``, so a 1 Hz-wide band would average the modulation away. A row is left NaN
    (and said why in ``notes``) when its band would reach into the phase band (below the
    phase band's upper edge: the map would then show the phase rhythm itself), reaches the
    Nyquist frequency, or needs a longer signal. With ``trim_edges`` (as the significance
    tests) the ends where any filter used saw the padding are dropped.

    Raises:
        ValueError: a band reaches the Nyquist frequency or the signals differ in shape.
        SignalTooShortError: the phase or amplitude band's filter does not fit the signal.
    """
    x_phase = as_numpy(phase_signal)
    x_amp = as_numpy(amplitude_signal)
    if x_phase.ndim != 1 or x_phase.shape != x_amp.shape:
        raise ValueError(f"phase and amplitude signals must be (T,) of equal length, got "
                         f"{x_phase.shape} and {x_amp.shape}")
    if not step_hz > 0:
        raise ValueError(f"step_hz must be positive, got {step_hz}")
    pb, ab = band_pair(phase_band, amplitude_band, fs)
    width = float(width_hz) if width_hz is not None else 2.0 * pb.high
    n = x_phase.shape[0]
    base_taps = longest_filter((pb, ab), fs, n_cycles)
    require_samples(n, base_taps, trim_edges, f"the {base_taps}-tap filter of {pb} or {ab}")
    freqs = np.arange(ab.low, ab.high + step_hz / 2.0, step_hz)
    passbands = np.stack([freqs - width / 2.0, freqs + width / 2.0], axis=1)
    rows, notes = _map_rows(freqs, passbands, pb, fs, n, n_cycles, trim_edges)
    taps_used = longest_filter([pb, ab] + [band for _, band in rows], fs, n_cycles)
    edge = edge_samples(taps_used) if trim_edges else 0
    window = slice(edge, n - edge)
    phase = band_analytic(x_phase, fs, pb, n_cycles)[0][window]
    mean = np.full((freqs.size, int(n_bins)), np.nan)
    for i, band in rows:
        amp = band_analytic(x_amp, fs, band, n_cycles)[1][window]
        mean[i] = phase_binned_amplitude(phase, amp, n_bins)[0]
    return PhaseAmplitudeMap(
        phase_band=pb, amplitude_band=ab, frequencies=freqs, passbands=passbands,
        bin_edges=phase_bin_edges(n_bins), mean_amplitude=mean, width_hz=width, fs=float(fs),
        edge=edge, n_analysed=n - 2 * edge, notes=notes)
