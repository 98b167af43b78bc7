"""Population signals, EEG band-pass filters and the Hilbert transform.

Every function takes NumPy arrays (or anything :func:`numpy.asarray` accepts, torch tensors
included) and returns NumPy arrays. Time is always the last axis of a signal, or the first axis
of a ``(time, neurons)`` spike array. Sampling rates are in Hz, step sizes in milliseconds.

Filters
-------
A band is filtered with a linear-phase FIR band-pass (windowed sinc, Hamming window) applied
*zero-phase*: the symmetric filter is centred on each sample (its delay compensated) after the
signal is extended at both ends by an odd reflection, so the output has the input's length and
no phase shift. The filter length follows the band: it spans ``n_cycles`` cycles of the band's
low edge (3 by default, as EEGLAB's ``eegfilt``), and is at least long enough that the
transition band of the Hamming window (about ``3.3 * fs / numtaps`` Hz) is no wider than the
band itself. At 500 Hz this gives 6.0 s for delta, 0.83 s for theta, 0.66 s for alpha, 0.23 s
for beta, 0.10 s for low gamma and 0.05 s for high gamma. A band whose filter is longer than
the signal is never run on it: :func:`filter_bands` reports and skips it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from scipy import fft as sfft
from scipy import signal as ssignal

# the NumPy conversion and the step rate of the firing rates, used by the analysis too
from ..rates import as_numpy, sampling_rate

logger = logging.getLogger("sparse.analysis")

#: The classic EEG bands in Hz, ordered from slow to fast (docs/analysis.md).
EEG_BANDS: dict[str, tuple[float, float]] = {
    "delta": (0.5, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "low_gamma": (30.0, 80.0),
    "high_gamma": (80.0, 150.0),
}
#: Default phase-giving and amplitude-giving bands of the PAC analysis.
PHASE_BANDS: tuple[str, ...] = ("delta", "theta", "alpha", "beta")
AMPLITUDE_BANDS: tuple[str, ...] = ("low_gamma", "high_gamma")

#: Default number of cycles of a band's low edge that its filter spans.
DEFAULT_CYCLES = 3.0
#: Transition width of a Hamming-window FIR is about this many ``fs / numtaps``.
_HAMMING_TRANSITION = 3.3


class SignalTooShortError(ValueError):
    """The signal is shorter than the filter that a band needs."""


class EmptyPopulationError(ValueError):
    """A population signal is constant (typically: no spikes) and cannot be z-scored."""


@dataclass(frozen=True)
class Band:
    """A frequency band ``[low, high]`` in Hz with a name."""

    name: str
    low: float
    high: float

    @property
    def centre(self) -> float:
        """Arithmetic centre of the band in Hz."""
        return 0.5 * (self.low + self.high)

    def __str__(self) -> str:
        return f"{self.name} ({self.low:g}-{self.high:g} Hz)"


def resolve_bands(
    bands: Iterable[str | Band | tuple[str, float, float]] | Mapping[str, tuple[float, float]]
    | None = None,
) -> list[Band]:
    """Turn band names (keys of :data:`EEG_BANDS`), ``Band`` objects, ``(name, low, high)``
    tuples or a ``{name: (low, high)}`` mapping into a list of validated :class:`Band`."""
    if bands is None:
        bands = EEG_BANDS
    if isinstance(bands, Mapping):
        items: list[Any] = [(k, *v) for k, v in bands.items()]
    else:
        items = list(bands)
    out: list[Band] = []
    for item in items:
        if isinstance(item, Band):
            band = item
        elif isinstance(item, str):
            if item not in EEG_BANDS:
                raise ValueError(
                    f"unknown band {item!r}; known bands: {', '.join(EEG_BANDS)} "
                    "(or pass (name, low_hz, high_hz))"
                )
            band = Band(item, *EEG_BANDS[item])
        else:
            name, low, high = item
            band = Band(str(name), float(low), float(high))
        if not (0 < band.low < band.high):
            raise ValueError(
                f"band {band.name!r} needs 0 < low < high, got {band.low}, {band.high}"
            )
        out.append(band)
    return out


def band_pair(phase_band: str | Band, amplitude_band: str | Band, fs: float
              ) -> tuple[Band, Band]:
    """The phase and amplitude bands of a PAC measure, resolved as by :func:`resolve_bands`.

    Raises:
        ValueError: either band reaches the Nyquist frequency ``fs / 2`` (``fs`` in Hz).
    """
    pb, ab = resolve_bands([phase_band, amplitude_band])
    for band in (pb, ab):
        if band.high >= fs / 2:
            raise ValueError(f"band {band} reaches the Nyquist frequency {fs / 2:g} Hz")
    return pb, ab


def usable_bands(bands: Sequence[Band], fs: float) -> tuple[list[Band], list[str]]:
    """Split ``bands`` into those a signal sampled at ``fs`` Hz can carry and messages for the
    others. A band is dropped when its upper edge is at or above the Nyquist frequency."""
    kept: list[Band] = []
    messages: list[str] = []
    for band in bands:
        if band.high >= fs / 2.0:
            messages.append(nyquist_message(band, fs))
        else:
            kept.append(band)
    return kept, messages


def nyquist_message(band: Band, fs: float) -> str:
    """The message for a band dropped because it reaches the Nyquist frequency."""
    return (
        f"band {band} reaches the Nyquist frequency {fs / 2.0:g} Hz of a signal sampled at "
        f"{fs:g} Hz: dropped"
    )


def filter_length(band: Band, fs: float, n_cycles: float = DEFAULT_CYCLES) -> int:
    """Number of taps (odd) of ``band``'s FIR filter at ``fs`` Hz: ``n_cycles`` cycles of the
    low edge, and at least enough for a transition band no wider than the band."""
    if not n_cycles > 0:
        raise ValueError(f"n_cycles must be positive, got {n_cycles}")
    seconds = max(n_cycles / band.low, _HAMMING_TRANSITION / (band.high - band.low))
    n = int(math.ceil(seconds * fs))
    return n + 1 if n % 2 == 0 else n


def longest_filter(bands: Iterable[Band], fs: float, n_cycles: float = DEFAULT_CYCLES) -> int:
    """Number of taps of the longest of the ``bands``' filters at ``fs`` Hz (see
    :func:`filter_length`); the filter that decides how long a signal must be."""
    return max(filter_length(band, fs, n_cycles) for band in bands)


def edge_samples(taps: int) -> int:
    """Samples at each end of a signal where a zero-phase filter of ``taps`` (odd) taps saw
    the reflected padding: ``(taps - 1) // 2``. Dropping them keeps what the signal alone
    determines."""
    return (taps - 1) // 2


def samples_needed(taps: int, trim_edges: bool) -> int:
    """Samples a signal needs for a filter of ``taps`` taps: ``taps``, and with
    ``trim_edges`` (the :func:`edge_samples` at both ends dropped afterwards) ``2 * taps - 1``,
    so that the interior left is at least as long as the filter's edges."""
    return 2 * taps - 1 if trim_edges else taps


def require_samples(n: int, taps: int, trim_edges: bool, what: str) -> None:
    """Raise :class:`SignalTooShortError` when ``n`` samples are fewer than
    :func:`samples_needed` for ``taps`` taps; ``what`` names the filter in the message."""
    need = samples_needed(taps, trim_edges)
    if n < need:
        margins = " and its edge margins" if trim_edges else ""
        raise SignalTooShortError(f"{n} samples are too few for {what}{margins} ({need} needed)")


def design_band_filter(band: Band, fs: float, n_cycles: float = DEFAULT_CYCLES) -> np.ndarray:
    """Taps ``(numtaps,)`` of the linear-phase band-pass FIR for ``band`` at ``fs`` Hz."""
    nyquist = fs / 2.0
    if band.high >= nyquist:
        raise ValueError(f"band {band} is not below the Nyquist frequency {nyquist:g} Hz")
    numtaps = filter_length(band, fs, n_cycles)
    return ssignal.firwin(numtaps, [band.low, band.high], pass_zero=False, fs=fs, window="hamming")


def apply_zero_phase(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Filter ``x`` (..., T) with the symmetric FIR ``taps`` (odd length) with zero phase.

    The signal is extended at both ends by an odd reflection of ``len(taps) // 2`` samples and
    convolved in 'valid' mode, so the output has shape (..., T). Raises
    :class:`SignalTooShortError` when ``T < len(taps)``.
    """
    x = as_numpy(x)
    numtaps = len(taps)
    n = x.shape[-1]
    if n < numtaps:
        raise SignalTooShortError(
            f"signal of {n} samples is shorter than the {numtaps}-tap filter"
        )
    pad = numtaps // 2
    if pad == 0:
        return x * taps[0]
    left = 2 * x[..., :1] - x[..., pad:0:-1]
    right = 2 * x[..., -1:] - x[..., -2 : -pad - 2 : -1]
    ext = np.concatenate([left, x, right], axis=-1)
    kernel = taps.reshape((1,) * (x.ndim - 1) + (numtaps,))
    return ssignal.fftconvolve(ext, kernel, mode="valid", axes=-1)


def band_filter(
    x: Any, fs: float, band: Band | str, n_cycles: float = DEFAULT_CYCLES
) -> np.ndarray:
    """Zero-phase band-pass filter of ``x`` (..., T) sampled at ``fs`` Hz; returns (..., T).

    Raises :class:`SignalTooShortError` when the band's filter is longer than the signal and
    ``ValueError`` when the band reaches the Nyquist frequency.
    """
    (band,) = resolve_bands([band])
    taps = design_band_filter(band, fs, n_cycles)
    try:
        return apply_zero_phase(as_numpy(x), taps)
    except SignalTooShortError as err:
        raise SignalTooShortError(
            f"band {band} needs a {len(taps)}-tap filter ({len(taps) / fs:.2f} s at {fs:g} Hz, "
            f"{n_cycles:g} cycles of {band.low:g} Hz); {err}"
        ) from None


def band_analytic(x: Any, fs: float, band: Band | str, n_cycles: float = DEFAULT_CYCLES,
                  workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Phase (radians) and amplitude envelope of ``x`` (..., T) in ``band``: the zero-phase
    :func:`band_filter` at ``fs`` Hz, then :func:`hilbert_phase_amplitude` (``workers``: its
    FFT threads). Both (..., T); raises as :func:`band_filter` does."""
    return hilbert_phase_amplitude(band_filter(x, fs, band, n_cycles), workers=workers)


def filter_bands(
    x: Any,
    fs: float,
    bands: Iterable[str | Band] | None = None,
    n_cycles: float = DEFAULT_CYCLES,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Filter ``x`` (..., T) in every band that the signal allows.

    Returns ``({band name: filtered (..., T)}, messages)``: bands at or above the Nyquist
    frequency and bands whose filter is longer than the signal are skipped (never run) and
    each skip is described in ``messages`` (also logged).
    """
    x = as_numpy(x)
    kept, messages = usable_bands(resolve_bands(bands), fs)
    out: dict[str, np.ndarray] = {}
    for band in kept:
        try:
            out[band.name] = band_filter(x, fs, band, n_cycles)
        except SignalTooShortError as err:
            messages.append(f"{err}: skipped")
    for m in messages:
        logger.warning(m)
    return out, messages


def hilbert_phase_amplitude(x: Any, workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Instantaneous phase (radians in (-pi, pi]) and amplitude envelope of the real signal
    ``x`` (..., T) from its analytic signal (FFT Hilbert transform). Both have shape (..., T)."""
    x = as_numpy(x)
    n = x.shape[-1]
    spec = sfft.fft(x, axis=-1, workers=workers)
    h = np.zeros(n)
    if n % 2 == 0:
        h[0] = h[n // 2] = 1.0
        h[1 : n // 2] = 2.0
    else:
        h[0] = 1.0
        h[1 : (n + 1) // 2] = 2.0
    analytic = sfft.ifft(spec * h, axis=-1, workers=workers)
    return np.angle(analytic), np.abs(analytic)


def population_signal(spikes: Any, length: int | None = None) -> np.ndarray:
    """Population signal of one utterance: the mean over neurons of ``spikes`` (T, N), z-scored
    over time. Returns (T,) (or (length,) when ``length`` crops padded frames).

    Raises :class:`EmptyPopulationError` when the mean is constant (no spikes at all, or every
    neuron firing at every step), since it cannot be z-scored.
    """
    s = as_numpy(spikes)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2:
        raise ValueError(f"spikes must have shape (time, neurons), got {s.shape}")
    if length is not None:
        s = s[: int(length)]
    if s.shape[1] == 0:
        raise EmptyPopulationError("population has no neurons")
    return zscore(s.mean(axis=1), what="population")


def zscore(x: Any, what: str = "signal") -> np.ndarray:
    """Z-score ``x`` (..., T) over time. Raises :class:`EmptyPopulationError` for a constant
    series (naming ``what``: 'has no spikes' when it is all zero)."""
    x = as_numpy(x)
    if x.shape[-1] < 2:
        raise EmptyPopulationError(f"{what} has fewer than 2 time steps")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contains NaN or infinite values")
    mean = x.mean(axis=-1, keepdims=True)
    std = x.std(axis=-1, keepdims=True)
    if np.any(std <= 1e-12 * np.maximum(1.0, np.abs(mean))):
        if np.all(x == 0):
            raise EmptyPopulationError(f"{what} has no spikes (all-zero signal)")
        raise EmptyPopulationError(f"{what} is constant over time and cannot be z-scored")
    return (x - mean) / std


def waveform_to_rate(
    waveform: Any,
    sample_rate_hz: float,
    dt_ms: float,
    n_steps: int | None = None,
    envelope: bool = False,
) -> np.ndarray:
    """Bring an audio waveform (S,) sampled at ``sample_rate_hz`` to the spike rate
    ``1000 / dt_ms`` Hz with an anti-aliasing polyphase resampler (Kaiser-window low-pass at
    the new Nyquist frequency). With ``envelope=True`` the Hilbert amplitude envelope of the
    waveform is resampled instead. ``n_steps`` crops or zero-pads the result to the model's
    number of time steps. Returns (T,) float64.
    """
    w = as_numpy(waveform)
    if w.ndim != 1:
        raise ValueError(f"waveform must be one-dimensional (samples,), got shape {w.shape}")
    if w.size == 0:
        raise ValueError("waveform is empty")
    if not np.all(np.isfinite(w)):
        raise ValueError("waveform contains NaN or infinite values")
    fs_out = sampling_rate(dt_ms)
    if not sample_rate_hz > 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate_hz}")
    if envelope:
        w = hilbert_phase_amplitude(w)[1]
    ratio = Fraction(fs_out / float(sample_rate_hz)).limit_denominator(10_000)
    if ratio == 1:
        out = w.copy()
    else:
        up, down = ratio.numerator, ratio.denominator
        # scipy's default anti-aliasing design (Kaiser window, beta 5, cutoff at the lower
        # Nyquist frequency), passed as taps: scipy's array-API probe mistakes this package
        # (named ``sparse``) for pydata/sparse when it inspects a non-array window argument.
        max_rate = max(up, down)
        taps = ssignal.firwin(20 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
        out = ssignal.resample_poly(w, up, down, window=taps)
    if n_steps is not None:
        n_steps = int(n_steps)
        if out.shape[0] >= n_steps:
            out = out[:n_steps]
        else:
            out = np.concatenate([out, np.zeros(n_steps - out.shape[0])])
    return out
