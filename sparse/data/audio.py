"""Reading audio files: wav / flac / NIST SPHERE (TIMIT) through :mod:`soundfile`, mono-mixed
and resampled with a polyphase filter (:func:`scipy.signal.resample_poly`).

Every failure is an :class:`AudioError` that names the file and the problem.
"""

from __future__ import annotations

import os
import warnings
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["AudioError", "ErrorPolicy", "load_audio", "resample", "audio_info", "check_policy"]

#: What a loader does with an unreadable file: raise, or skip it with a counted warning.
ErrorPolicy = str  # "raise" | "skip"


class AudioError(ValueError):
    """An audio file is missing, empty, corrupt or unreadable. ``path`` names it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def check_policy(on_error: str) -> str:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    return on_error


def resample(x: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Resample along the last axis with a polyphase anti-aliasing filter.

    Args:
        x: samples, shape ``(..., num_samples)``.
        orig_sr: rate of ``x`` in Hz.
        new_sr: wanted rate in Hz.

    Returns:
        float32 array of shape ``(..., round(num_samples * new_sr / orig_sr))``.
    """
    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {new_sr}")
    x = np.asarray(x, dtype=np.float32)
    if orig_sr == new_sr:
        return x
    from scipy.signal import resample_poly

    frac = Fraction(int(new_sr), int(orig_sr))
    up, down = frac.numerator, frac.denominator
    # the filter resample_poly designs by default, passed explicitly: SciPy's array-API probe of
    # a ("kaiser", 5.0) window looks up sys.modules["sparse"].SparseArray (pydata/sparse) and
    # fails because this package is also called "sparse"
    y = resample_poly(x, up, down, axis=-1, window=_lowpass(up, down))
    return y.astype(np.float32, copy=False)


@lru_cache(maxsize=16)
def _lowpass(up: int, down: int) -> np.ndarray:
    """Kaiser-windowed (beta 5) low-pass FIR at the lower Nyquist, 10 zero-crossings a side."""
    from scipy.signal import firwin

    max_rate = max(up, down)
    taps = firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    taps.setflags(write=False)
    return taps


def _existing_file(path: str | Path) -> Path:
    """``path`` as a Path, after checking it is a non-empty regular file (a folder or a broken
    link named like audio is reported as such, not as a missing file)."""
    p = Path(path)
    if not p.is_file():
        if p.is_dir():
            raise AudioError(p, "a folder, not an audio file")
        if p.is_symlink():
            raise AudioError(p, f"broken symbolic link (to {os.readlink(p)}, which does not "
                             "exist)")
        if p.exists():
            raise AudioError(p, "not a regular file")
        raise AudioError(p, "file not found")
    if p.stat().st_size == 0:
        raise AudioError(p, "empty file (0 bytes)")
    return p


def audio_info(path: str | Path) -> tuple[int, int]:
    """``(num_frames, sample_rate)`` of a file, read from its header.

    Raises:
        AudioError: missing, empty or unreadable file.
    """
    import soundfile as sf

    p = _existing_file(path)
    try:
        info = sf.info(str(p))
    except Exception as exc:  # soundfile raises RuntimeError / LibsndfileError
        raise AudioError(p, f"unreadable or corrupt audio ({exc})") from exc
    return int(info.frames), int(info.samplerate)


def load_audio(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read a file as mono float32 in [-1, 1], resampled to ``sample_rate`` if given.

    Args:
        path: a wav, flac, NIST SPHERE or any other format libsndfile reads.
        sample_rate: target rate in Hz; ``None`` keeps the file's rate.

    Returns:
        ``(samples, rate)`` with samples of shape ``(num_samples,)``.

    Raises:
        AudioError: the file is missing, empty (0 bytes or 0 samples), corrupt, or holds
            non-finite samples.
    """
    import soundfile as sf

    p = _existing_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(p, f"unreadable or corrupt audio ({exc})") from exc
    if data.shape[0] == 0:
        raise AudioError(p, "no audio samples (0 frames)")
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(x)):
        raise AudioError(p, "audio holds NaN or infinite samples")
    if sample_rate is not None and sample_rate != sr:
        x = resample(x, sr, sample_rate)
        sr = sample_rate
    return np.ascontiguousarray(x, dtype=np.float32), int(sr)
