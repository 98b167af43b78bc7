"""Test conditions: what a test utterance goes through before the encoder hears it, so that
``sparse evaluate --condition NAME`` measures robustness to a channel the model was not trained
on.

* ``clean``: the audio as it is.
* ``telephone``: a narrow-band telephone line. The waveform is resampled to 8 kHz, everything
  outside 300-3,400 Hz is removed (the FFT bins of the whole utterance are set to zero), pink
  noise limited to the same band is added at 10 dB below the band-limited speech (powers over
  the whole utterance), and the result is resampled back to the original rate.

Every condition is deterministic: the noise of an utterance is drawn from a generator seeded
with its id, so the same utterance always gets the same noise, whatever the batch, the order or
the number of utterances evaluated.
"""

from __future__ import annotations

import zlib

import numpy as np

from .audio import resample
from .noise import coloured_noise

__all__ = ["CONDITIONS", "TELEPHONE_BAND_HZ", "TELEPHONE_RATE", "TELEPHONE_SNR_DB",
           "apply_condition", "band_limit", "telephone"]

#: The conditions ``sparse evaluate --condition`` accepts (the first is the default).
CONDITIONS = ("clean", "telephone")
#: The telephone line's sample rate (Hz), pass band (Hz) and signal-to-noise ratio (dB).
TELEPHONE_RATE = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
TELEPHONE_SNR_DB = 10.0
#: Bumped whenever a condition's output changes (part of the feature cache's key).
VERSION = 1


def _band_pass(x: np.ndarray, sample_rate: int, band: tuple[float, float]) -> np.ndarray:
    """``x`` with the FFT bins of the whole signal outside ``band`` (Hz) set to zero."""
    if len(x) < 2:
        return np.zeros_like(x)
    spec = np.fft.rfft(x.astype(np.float64))
    freqs = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    spec[(freqs < band[0]) | (freqs > band[1])] = 0
    return np.fft.irfft(spec, len(x))


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` cut or zero-padded to ``n`` samples (a round trip through 8 kHz can change the
    length by a sample)."""
    return np.pad(x, (0, max(0, n - len(x))))[:n]


def band_limit(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """The telephone line without its noise: to 8 kHz, 300-3,400 Hz, back to ``sample_rate``.

    Args:
        wave: ``(n,)`` samples.

    Returns:
        ``(n,)`` float32.
    """
    x8 = resample(np.asarray(wave, dtype=np.float32), sample_rate, TELEPHONE_RATE)
    y8 = _band_pass(x8, TELEPHONE_RATE, TELEPHONE_BAND_HZ)
    return _fit(resample(y8.astype(np.float32), TELEPHONE_RATE, sample_rate), len(wave))


def telephone(wave: np.ndarray, sample_rate: int, key: str,
              snr_db: float = TELEPHONE_SNR_DB) -> np.ndarray:
    """``wave`` through a noisy telephone line (see the module's description).

    Args:
        wave: ``(n,)`` samples at ``sample_rate``.
        key: what seeds the noise (the utterance id).
        snr_db: power of the band-limited speech over the power of the band-limited noise.

    Returns:
        ``(n,)`` float32.
    """
    x8 = resample(np.asarray(wave, dtype=np.float32), sample_rate, TELEPHONE_RATE)
    speech = _band_pass(x8, TELEPHONE_RATE, TELEPHONE_BAND_HZ)
    rng = np.random.default_rng([zlib.crc32(key.encode("utf-8")), TELEPHONE_RATE])
    noise = _band_pass(coloured_noise(len(x8), rng, 1.0), TELEPHONE_RATE, TELEPHONE_BAND_HZ)
    p_s = float(np.mean(speech * speech)) if len(speech) else 0.0
    p_n = float(np.mean(noise * noise)) if len(noise) else 0.0
    scale = np.sqrt(p_s / (p_n * 10.0 ** (snr_db / 10.0))) if p_s > 0 and p_n > 0 else 0.0
    y8 = (speech + scale * noise).astype(np.float32)
    return _fit(resample(y8, TELEPHONE_RATE, sample_rate), len(wave))


def apply_condition(name: str, wave: np.ndarray, sample_rate: int, key: str) -> np.ndarray:
    """``wave`` under the condition ``name`` (one of :data:`CONDITIONS`).

    Raises:
        ValueError: an unknown condition.
    """
    if name == "clean":
        return wave
    if name == "telephone":
        return telephone(wave, sample_rate, key)
    raise ValueError(f"unknown test condition {name!r}: must be one of "
                     f"{', '.join(repr(c) for c in CONDITIONS)}")
