"""Noise for the synthesised corpus: coloured noise with a random spectral slope, mains hum,
and mixing at a chosen signal-to-noise ratio. Pure numpy; every draw comes from the caller's
:class:`numpy.random.Generator`, so a seed fixes the result.
"""

from __future__ import annotations

import numpy as np

__all__ = ["coloured_noise", "hum", "random_noise", "mix_at_snr"]


def coloured_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown).

    Returns:
        float32 array of shape ``(n,)`` with unit RMS.
    """
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    m = 1 << max(0, int(n - 1).bit_length())  # a power of two: fast FFT whatever n is
    spec = np.fft.rfft(rng.standard_normal(m))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec *= f ** (-exponent / 2.0)
    spec[0] = 0.0
    x = np.fft.irfft(spec, m)[:n]
    rms = float(np.sqrt(np.mean(x * x))) or 1.0
    return (x / rms).astype(np.float32)


def hum(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum (50 or 60 Hz and harmonics with random amplitudes) over faint white noise.

    Returns:
        float32 array of shape ``(n,)`` with unit RMS.
    """
    t = np.arange(n) / sample_rate
    base = 50.0 if rng.random() < 0.5 else 60.0
    x = 0.05 * rng.standard_normal(n)
    for k in range(1, 6):
        phase = rng.uniform(0, 2 * np.pi)
        x += rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * base * k * t + phase)
    rms = float(np.sqrt(np.mean(x * x))) or 1.0
    return (x / rms).astype(np.float32)


def random_noise(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One noise of a random kind: coloured (slope 0-2) most of the time, else hum.

    Returns:
        float32 array of shape ``(n,)`` with unit RMS.
    """
    if rng.random() < 0.85:
        return coloured_noise(n, rng, float(rng.uniform(0.0, 2.0)))
    return hum(n, sample_rate, rng)


def mix_at_snr(
    speech: np.ndarray, noise: np.ndarray, snr_db: float, active: slice | None = None
) -> np.ndarray:
    """Add ``noise`` scaled so that speech power / noise power = ``snr_db``.

    Args:
        speech: shape ``(n,)``.
        noise: shape ``(n,)``.
        snr_db: wanted ratio in dB.
        active: the part of ``speech`` whose power counts (the speech, not the silence
            around it); the whole signal if ``None``.

    Returns:
        float32 array of shape ``(n,)``.
    """
    if speech.shape != noise.shape:
        raise ValueError(f"speech {speech.shape} and noise {noise.shape} differ in shape")
    ref = speech[active] if active is not None else speech
    p_s = float(np.mean(np.square(ref, dtype=np.float64))) if len(ref) else 0.0
    p_n = float(np.mean(np.square(noise, dtype=np.float64))) or 1.0
    if p_s == 0.0:
        return speech.astype(np.float32)
    scale = np.sqrt(p_s / (p_n * 10.0 ** (snr_db / 10.0)))
    return (speech + scale * noise).astype(np.float32)
