"""Log-mel filterbank front end and feature standardisation, in plain torch.

Audio ``(batch, samples)`` with optional ``lengths`` (valid samples per item) becomes log-mel
features ``(batch, frames, n_mels)`` and exact frame lengths. No torchaudio at run time.

Conventions (all options live in :class:`FbankConfig`):

- **Framing.** ``"center"`` (default; SpeechBrain's ``Fbank``, ``torch.stft(center=True)``,
  librosa): the signal is zero-padded by ``n_fft // 2`` samples on each side and frame ``t``
  covers padded samples ``[t * hop, t * hop + n_fft)``, with the ``win``-sample window centred in
  it; an item of ``n`` samples has ``1 + (n + 2 * (n_fft // 2) - n_fft) // hop`` frames, i.e.
  ``1 + n // hop`` for an even ``n_fft``. Frame ``t`` is centred on sample ``t * hop``.
  ``"snip_edges"`` (Kaldi's default): frame ``t`` covers samples ``[t * hop, t * hop + win)``,
  only whole frames, ``1 + (n - win) // hop`` frames (an item shorter than a window is an error).
- **Per frame**, in Kaldi's order: optional DC removal, optional pre-emphasis
  ``y[i] = x[i] - c * x[i - 1]`` with ``x[-1] = x[0]``, window, ``rfft`` of size ``n_fft``
  (default: the window length), power (``|X|^2``) or magnitude spectrum, mel filters, log.
  Pre-emphasis and DC removal act inside each frame, so every frame depends only on its own
  samples and features can be computed chunk by chunk (:class:`FilterbankStream`).
- **Mel filters** (HTK mel scale ``2595 log10(1 + f / 700)``; ``n_mels + 2`` points evenly spaced
  in mel between ``f_min`` and ``f_max``): ``"speechbrain"`` (default) triangles symmetric in Hz,
  half-width = distance to the lower neighbour's centre, as SpeechBrain's ``Filterbank``;
  ``"htk"`` triangles linear in Hz between the neighbours' centres (HTK, torchaudio's
  ``melscale_fbanks``, librosa with ``htk=True, norm=None``); ``"kaldi"`` triangles linear in mel
  (Kaldi, ``torchaudio.compliance.kaldi.fbank``).
- **Log.** ``"db"``: ``10 log10(max(E, floor))`` for power (``20 log10`` for magnitude);
  ``"ln"``: ``ln(max(E, floor))``. ``top_db`` (off by default) clips each utterance at its
  maximum over valid frames minus ``top_db`` dB, as SpeechBrain does with 80 dB; it is off by
  default because it makes a frame depend on the whole utterance (no exact streaming).
- **Padding.** Samples past an item's length are treated as zeros whatever they hold, so an item
  inside a padded batch gives exactly the frames it gives alone; frames past an item's frame
  length are set to 0.

:meth:`FbankConfig.speechbrain` and :meth:`FbankConfig.kaldi` reproduce those toolkits'
defaults (``tests/test_features.py`` checks both against the real implementations).

Standardisation (zero mean, unit variance per channel): :func:`utterance_standardize` /
:class:`UtteranceStandardization` (per utterance and channel, over valid frames) and
:class:`GlobalStandardization` (running statistics over training batches, frozen in eval, saved
in the ``state_dict``). Both zero padded frames in their output. Their former names
``utterance_normalize``, ``UtteranceNormalization`` and ``GlobalNormalization`` still work for
one release, with a warning.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .deprecation import moved_names
from .lengths import check_lengths, length_mask
from .snn import check_sequence

__all__ = [
    "FbankConfig",
    "FilterbankStream",
    "GlobalStandardization",
    "LogMelFilterbank",
    "UtteranceStandardization",
    "feature_window",
    "frames_for",
    "length_mask",
    "log_mel_filterbank",
    "mel_filter_matrix",
    "utterance_standardize",
]

Framing = Literal["center", "snip_edges"]
WindowName = Literal["hamming", "hann", "povey", "blackman", "rectangular"]
MelFilters = Literal["speechbrain", "htk", "kaldi"]
LogKind = Literal["db", "ln"]

_FRAMINGS = ("center", "snip_edges")
_WINDOWS = ("hamming", "hann", "povey", "blackman", "rectangular")
_MEL_FILTERS = ("speechbrain", "htk", "kaldi")
_LOGS = ("db", "ln")
_FLOAT32_EPS = float(torch.finfo(torch.float32).eps)


def _samples(ms: float, sample_rate: int, name: str) -> int:
    """Convert a duration in ms to a whole number of samples, or explain why it is not one."""
    exact = ms * sample_rate / 1000.0
    count = round(exact)
    if count < 1 or abs(exact - count) > 1e-6 * max(1.0, exact):
        lo, hi = max(1, math.floor(exact)), max(1, math.ceil(exact))
        options = sorted({lo, hi})
        hint = " or ".join(f"{n} samples = {n * 1000.0 / sample_rate:g} ms" for n in options)
        raise ValueError(
            f"{name}={ms:g} ms is {exact:g} samples at sample_rate={sample_rate} Hz, not a whole "
            f"number of samples (at least 1); use e.g. {hint}"
        )
    return count


@dataclasses.dataclass(frozen=True)
class FbankConfig:
    """Every option of the log-mel front end, validated on construction.

    Defaults are the paper's configuration (80 mels, 25 ms window, 2 ms hop = 500 frames/s at
    16 kHz) with SpeechBrain's conventions (centred frames, periodic Hamming window, ``n_fft`` =
    window length, symmetric triangles, power spectrum in dB), but no ``top_db`` clipping.

    Attributes:
        sample_rate: Hz.
        n_mels: number of mel channels.
        win_ms: window length in ms; must be a whole number of samples.
        hop_ms: hop (frame shift) in ms; must be a whole number of samples.
        n_fft: FFT size in samples (>= window length); ``None`` = window length.
        window: ``"hamming"``, ``"hann"``, ``"povey"`` (Kaldi: Hann ** 0.85), ``"blackman"``,
            ``"rectangular"``.
        periodic_window: periodic (torch's default, SpeechBrain) or symmetric (Kaldi) window.
        framing: ``"center"`` or ``"snip_edges"`` (see the module docstring).
        f_min: lowest mel edge in Hz.
        f_max: highest mel edge in Hz; ``None`` = Nyquist.
        mel_filters: ``"speechbrain"``, ``"htk"`` or ``"kaldi"`` triangles.
        power: 2 for the power spectrum, 1 for the magnitude.
        log: ``"db"`` or ``"ln"``.
        floor: energies are clamped to at least this before the log.
        top_db: per-utterance dynamic-range clip in dB (``log="db"`` only), or ``None``.
        preemphasis: per-frame pre-emphasis coefficient in [0, 1); 0 = off.
        remove_dc_offset: subtract each frame's mean before windowing.
        dither: std of Gaussian noise added to valid samples (0 = off; the module adds it in
            training mode only).
    """

    sample_rate: int = 16000
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 2.0
    n_fft: int | None = None
    window: WindowName = "hamming"
    periodic_window: bool = True
    framing: Framing = "center"
    f_min: float = 0.0
    f_max: float | None = None
    mel_filters: MelFilters = "speechbrain"
    power: float = 2.0
    log: LogKind = "db"
    floor: float = 1e-10
    top_db: float | None = None
    preemphasis: float = 0.0
    remove_dc_offset: bool = False
    dither: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int):
            raise TypeError(f"sample_rate must be an int in Hz, got {self.sample_rate!r}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if isinstance(self.n_mels, bool) or not isinstance(self.n_mels, int) or self.n_mels < 1:
            raise ValueError(f"n_mels must be a positive int, got {self.n_mels!r}")
        for name in ("win_ms", "hop_ms"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of ms, got {value!r}")
        win = _samples(self.win_ms, self.sample_rate, "win_ms")
        _samples(self.hop_ms, self.sample_rate, "hop_ms")
        if self.n_fft is not None:
            if isinstance(self.n_fft, bool) or not isinstance(self.n_fft, int):
                raise TypeError(f"n_fft must be an int or None, got {self.n_fft!r}")
            if self.n_fft < win:
                raise ValueError(
                    f"n_fft={self.n_fft} is shorter than the window ({win} samples = "
                    f"{self.win_ms:g} ms at {self.sample_rate} Hz); use n_fft >= {win} or None"
                )
        for name, value, allowed in (
            ("window", self.window, _WINDOWS),
            ("framing", self.framing, _FRAMINGS),
            ("mel_filters", self.mel_filters, _MEL_FILTERS),
            ("log", self.log, _LOGS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        nyquist = self.sample_rate / 2
        f_max = nyquist if self.f_max is None else self.f_max
        if not 0.0 <= self.f_min < f_max <= nyquist:
            raise ValueError(
                f"need 0 <= f_min < f_max <= Nyquist ({nyquist:g} Hz); got f_min={self.f_min:g}, "
                f"f_max={f_max:g}"
            )
        if self.power not in (1, 2):
            raise ValueError(f"power must be 1 (magnitude) or 2 (power), got {self.power!r}")
        if not self.floor > 0:
            raise ValueError(f"floor must be positive, got {self.floor!r}")
        if self.top_db is not None:
            if self.log != "db":
                raise ValueError("top_db is in dB and needs log='db'")
            if not self.top_db > 0:
                raise ValueError(f"top_db must be positive or None, got {self.top_db!r}")
        if not 0.0 <= self.preemphasis < 1.0:
            raise ValueError(f"preemphasis must be in [0, 1), got {self.preemphasis!r}")
        if not self.dither >= 0:
            raise ValueError(f"dither must be >= 0, got {self.dither!r}")

    # Presets -----------------------------------------------------------------------------

    @classmethod
    def speechbrain(cls, **overrides: Any) -> FbankConfig:
        """SpeechBrain's ``Fbank`` defaults: 40 mels, 25 ms / 10 ms, n_fft 400 (at any sample
        rate, as SpeechBrain), top_db 80.

        ``FbankConfig.speechbrain(n_mels=80, hop_ms=2.0)`` matches
        ``speechbrain.lobes.features.Fbank(n_mels=80, hop_length=2)`` at 16 kHz.
        """
        base: dict[str, Any] = dict(
            n_mels=40, win_ms=25.0, hop_ms=10.0, window="hamming", periodic_window=True,
            framing="center", mel_filters="speechbrain", power=2.0, log="db", floor=1e-10,
            top_db=80.0, n_fft=400,
        )  # fmt: skip
        base.update(overrides)
        return cls(**base)

    @classmethod
    def kaldi(cls, **overrides: Any) -> FbankConfig:
        """Kaldi's ``compute-fbank-feats`` / ``torchaudio.compliance.kaldi.fbank`` defaults.

        23 mels from 20 Hz, 25 ms / 10 ms snip-edges frames, DC removal, pre-emphasis 0.97,
        Povey window, FFT size rounded up to a power of two, natural log floored at float32 eps,
        no dither (Kaldi's command line dithers by 1; torchaudio's function does not).
        """
        base: dict[str, Any] = dict(
            n_mels=23, win_ms=25.0, hop_ms=10.0, window="povey", periodic_window=False,
            framing="snip_edges", f_min=20.0, mel_filters="kaldi", power=2.0, log="ln",
            floor=_FLOAT32_EPS, preemphasis=0.97, remove_dc_offset=True,
        )  # fmt: skip
        base.update(overrides)
        if "n_fft" not in overrides:
            probe = cls(**{**base, "n_fft": None})
            base["n_fft"] = 1 << (probe.win_length - 1).bit_length()
        return cls(**base)

    def replace(self, **changes: Any) -> FbankConfig:
        """A copy with some options changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # Derived sizes -----------------------------------------------------------------------

    @property
    def win_length(self) -> int:
        """Window length in samples."""
        return _samples(self.win_ms, self.sample_rate, "win_ms")

    @property
    def hop_length(self) -> int:
        """Hop in samples."""
        return _samples(self.hop_ms, self.sample_rate, "hop_ms")

    @property
    def fft_size(self) -> int:
        """FFT size in samples (``n_fft``, or the window length)."""
        return self.win_length if self.n_fft is None else self.n_fft

    @property
    def n_freqs(self) -> int:
        """Number of one-sided FFT bins, ``fft_size // 2 + 1``."""
        return self.fft_size // 2 + 1

    @property
    def frame_rate_hz(self) -> float:
        """Frames per second (500 for a 2 ms hop)."""
        return self.sample_rate / self.hop_length

    @property
    def f_max_hz(self) -> float:
        """The upper mel edge in Hz (Nyquist when ``f_max`` is None)."""
        return self.sample_rate / 2 if self.f_max is None else float(self.f_max)

    @property
    def _pad(self) -> int:
        """Zeros added on each side of the signal (centre framing) or 0."""
        return self.fft_size // 2 if self.framing == "center" else 0

    @property
    def _extent(self) -> int:
        """Samples (of the padded signal) a frame spans: ``n_fft`` centred, ``win`` snipped."""
        return self.fft_size if self.framing == "center" else self.win_length

    @property
    def _offset(self) -> int:
        """Where the window starts inside a frame's extent."""
        return (self.fft_size - self.win_length) // 2 if self.framing == "center" else 0

    def frames_for(self, samples: int | Tensor) -> int | Tensor:
        """Frames that a whole utterance of ``samples`` samples yields (0 if it yields none).

        Works on an int or an integer tensor (elementwise). For a stream see
        :meth:`frames_ready`: the last frames of a centred utterance need its end.
        """
        return self._complete_frames(samples, self._pad + self._pad)

    def frames_ready(self, samples: int | Tensor) -> int | Tensor:
        """Frames that the first ``samples`` samples of a stream determine, before its end.

        With snip-edges framing this equals :meth:`frames_for`; with centred framing the last
        ``frames_for(n) - frames_ready(n)`` frames wait for the end of the stream (they overlap
        the right zero padding). A chunk that brings a stream from ``s`` to ``s + c`` samples
        yields ``frames_ready(s + c) - frames_ready(s)`` frames.
        """
        return self._complete_frames(samples, self._pad)

    def _complete_frames(self, samples: int | Tensor, pad: int) -> int | Tensor:
        extent, hop = self._extent, self.hop_length
        if isinstance(samples, Tensor):
            avail = samples.long() + pad
            return torch.where(
                avail >= extent, torch.div(avail - extent, hop, rounding_mode="floor") + 1, 0
            )
        avail = int(samples) + pad
        return (avail - extent) // hop + 1 if avail >= extent else 0


def frames_for(
    samples: int | Tensor, config: FbankConfig | None = None, **options: Any
) -> int | Tensor:
    """Frames that an utterance of ``samples`` samples yields (:meth:`FbankConfig.frames_for`)."""
    return _resolve(config, options).frames_for(samples)


def _resolve(config: FbankConfig | None, options: dict[str, Any]) -> FbankConfig:
    if config is None:
        return FbankConfig(**options)
    if not isinstance(config, FbankConfig):
        raise TypeError(f"config must be an FbankConfig, got {type(config).__name__}")
    return config.replace(**options) if options else config


# Window and filters ----------------------------------------------------------------------------


def feature_window(config: FbankConfig, dtype: torch.dtype = torch.float64) -> Tensor:
    """The analysis window, shape ``(win_length,)``."""
    n, periodic = config.win_length, config.periodic_window
    kw: dict[str, Any] = dict(periodic=periodic, dtype=torch.float64)
    if config.window == "hamming":
        w = torch.hamming_window(n, **kw)
    elif config.window == "hann":
        w = torch.hann_window(n, **kw)
    elif config.window == "povey":
        w = torch.hann_window(n, **kw).pow(0.85)
    elif config.window == "blackman":
        w = torch.blackman_window(n, **kw)
    else:
        w = torch.ones(n, dtype=torch.float64)
    return w.to(dtype)


def _hz_to_mel(hz: Tensor) -> Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: Tensor) -> Tensor:
    return 700.0 * (torch.pow(10.0, mel / 2595.0) - 1.0)


def mel_filter_matrix(config: FbankConfig, dtype: torch.dtype = torch.float64) -> Tensor:
    """Triangular mel filters, shape ``(n_freqs, n_mels)``: ``features = power @ matrix``.

    Bin ``k`` is at ``k * sample_rate / n_fft`` Hz. See the module docstring for the three
    triangle shapes. A filter narrower than the bin spacing may cover no bin (all zeros: many mels
    with a short FFT; not the case for 80 mels with a 400-point FFT at 16 kHz); its log energy
    is then the floor (a constant channel), as in the reference toolkits.
    """
    freqs = torch.arange(config.n_freqs, dtype=torch.float64) * config.sample_rate / config.fft_size
    lo = _hz_to_mel(torch.tensor(float(config.f_min), dtype=torch.float64))
    hi = _hz_to_mel(torch.tensor(config.f_max_hz, dtype=torch.float64))
    mel_points = torch.linspace(float(lo), float(hi), config.n_mels + 2, dtype=torch.float64)
    if config.mel_filters == "kaldi":
        points, axis = mel_points, _hz_to_mel(freqs)
    else:
        points, axis = _mel_to_hz(mel_points), freqs
    left, centre, right = points[:-2], points[1:-1], points[2:]
    x = axis[:, None]
    if config.mel_filters == "speechbrain":
        weights = 1.0 - (x - centre).abs() / (centre - left)
    else:
        up = (x - left) / (centre - left)
        down = (right - x) / (right - centre)
        weights = torch.minimum(up, down)
    return weights.clamp_min(0.0).to(dtype)


# Validation helpers ----------------------------------------------------------------------------


def _check_float_tensor(x: Any, name: str, shape: str, *, dims_hint: str = "",
                        float_hint: str = "") -> None:
    """Refuse anything but a floating-point tensor with as many dims as ``shape`` names
    (e.g. ``"(batch, samples)"``); ``name`` starts the messages and the hints end them."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != shape.count(",") + 1:
        raise ValueError(
            f"{name} must have shape {shape}, got {x.dim()} dims {tuple(x.shape)}{dims_hint}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {x.dtype}{float_hint}")


def _check_waveform(waveform: Tensor, config: FbankConfig) -> None:
    _check_float_tensor(
        waveform, "waveform", "(batch, samples)",
        dims_hint="; use waveform.unsqueeze(0) for one utterance and mix multi-channel audio "
                  "down to one channel first",
        float_hint="; convert 16-bit PCM with waveform.float() / 32768",
    )
    if waveform.shape[0] == 0 or waveform.shape[1] == 0:
        raise ValueError(f"empty audio: waveform has shape {tuple(waveform.shape)}")


# Functional core -------------------------------------------------------------------------------


def _frames_to_logmel(
    frames: Tensor, config: FbankConfig, window: Tensor, mel_matrix: Tensor
) -> Tensor:
    """``(..., win_length)`` raw frames -> ``(..., n_mels)`` log-mel energies (before top_db)."""
    if config.remove_dc_offset:
        frames = frames - frames.mean(dim=-1, keepdim=True)
    if config.preemphasis > 0:
        c = config.preemphasis
        frames = torch.cat(
            [frames[..., :1] * (1.0 - c), frames[..., 1:] - c * frames[..., :-1]], dim=-1
        )
    spectrum = torch.fft.rfft(frames * window, n=config.fft_size, dim=-1)
    energy = spectrum.real.square() + spectrum.imag.square()
    if config.power == 1:
        energy = energy.sqrt()
    mel = torch.matmul(energy, mel_matrix)
    mel = mel.clamp_min(config.floor)
    if config.log == "ln":
        return mel.log()
    return (20.0 / config.power) * mel.log10()


def log_mel_filterbank(
    waveform: Tensor,
    lengths: Tensor | Sequence[int] | None = None,
    config: FbankConfig | None = None,
    *,
    generator: torch.Generator | None = None,
    window: Tensor | None = None,
    mel_matrix: Tensor | None = None,
    **options: Any,
) -> tuple[Tensor, Tensor]:
    """Log-mel filterbank features of a batch of waveforms (stateless).

    Args:
        waveform: ``(batch, samples)`` float audio (any scale; the log floor assumes roughly
            [-1, 1]).
        lengths: valid samples per item, ``(batch,)`` integers in [1, samples]; ``None`` = all.
            Samples past an item's length are ignored (treated as zeros).
        config: an :class:`FbankConfig`; ``options`` build one (or override fields of it).
        generator: RNG for dither.
        window, mel_matrix: precomputed :func:`feature_window` / :func:`mel_filter_matrix` (the
            module passes its buffers); built from the config when omitted.

    Returns:
        ``(features, frame_lengths)``: features ``(batch, frames, n_mels)`` in the waveform's
        dtype (float32 for half inputs), frames = the longest item's frame count, zero past
        each item's length; frame_lengths ``(batch,)`` long = ``config.frames_for(lengths)``.

    Raises:
        ValueError / TypeError naming the problem: wrong rank or dtype, empty audio, NaN or inf
        in the valid samples, lengths out of range or not whole, an item too short for one
        frame (snip-edges framing).
    """
    cfg = _resolve(config, options)
    _check_waveform(waveform, cfg)
    batch, n_samples = waveform.shape
    device = waveform.device
    lens = check_lengths(lengths, batch, n_samples, device, minimum=1, what="sample")
    frame_lengths = cfg.frames_for(lens)
    if bool((frame_lengths < 1).any()):
        i = int((frame_lengths < 1).nonzero()[0, 0])
        raise ValueError(
            f"item {i} has {int(lens[i])} samples, shorter than one {cfg.win_length}-sample "
            f"window ({cfg.win_ms:g} ms), so snip_edges framing gives it no frame"
        )
    compute_dtype = waveform.dtype
    if compute_dtype not in (torch.float32, torch.float64):
        compute_dtype = torch.float32
    x = waveform.to(compute_dtype)
    valid = length_mask(lens, n_samples)
    finite = torch.isfinite(x) | ~valid
    if not bool(finite.all()):
        i = int((~finite).any(dim=1).nonzero()[0, 0])
        raise ValueError(f"waveform item {i} contains NaN or inf within its valid samples")
    x = x.masked_fill(~valid, 0.0)
    if cfg.dither > 0:
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu")
        x = x + cfg.dither * noise.to(device) * valid

    n_frames = int(frame_lengths.max())
    pad = cfg._pad
    if pad:
        x = F.pad(x, (pad, pad))
    start = cfg._offset
    needed = start + (n_frames - 1) * cfg.hop_length + cfg.win_length
    frames = x[:, start:needed].unfold(-1, cfg.win_length, cfg.hop_length)

    if window is None:
        window = feature_window(cfg, compute_dtype)
    if mel_matrix is None:
        mel_matrix = mel_filter_matrix(cfg, compute_dtype)
    window = window.to(device=device, dtype=compute_dtype)
    mel_matrix = mel_matrix.to(device=device, dtype=compute_dtype)
    feats = _frames_to_logmel(frames, cfg, window, mel_matrix)

    frame_valid = length_mask(frame_lengths, n_frames)[:, :, None]
    if cfg.top_db is not None:
        peak = feats.masked_fill(~frame_valid, -math.inf).amax(dim=(1, 2), keepdim=True)
        feats = torch.maximum(feats, peak - cfg.top_db)
    feats = feats.masked_fill(~frame_valid, 0.0)
    return feats, frame_lengths


# Module and streaming --------------------------------------------------------------------------


class LogMelFilterbank(nn.Module):
    """Log-mel filterbank as an ``nn.Module``: ``(batch, samples)`` -> ``(batch, frames, n_mels)``.

    Args:
        config: an :class:`FbankConfig`; keyword ``options`` build one or override its fields,
            e.g. ``LogMelFilterbank(n_mels=80, hop_ms=2.0, win_ms=25.0)``.

    The window and the mel matrix are non-persistent buffers (they follow ``.to(device)`` and
    are not saved: the config determines them). Dither, if configured, is added in training
    mode only, so evaluation is deterministic.

    Example:
        >>> fbank = LogMelFilterbank()  # 80 mels, 25 ms window, 2 ms hop, 16 kHz
        >>> feats, frame_lens = fbank(torch.randn(2, 16000), torch.tensor([16000, 8000]))
        >>> feats.shape, frame_lens.tolist()
        (torch.Size([2, 501, 80]), [501, 251])
    """

    window: Tensor
    mel_matrix: Tensor

    def __init__(self, config: FbankConfig | None = None, **options: Any) -> None:
        super().__init__()
        self.config = _resolve(config, options)
        self.register_buffer("window", feature_window(self.config, torch.float32), False)
        self.register_buffer("mel_matrix", mel_filter_matrix(self.config, torch.float32), False)

    @property
    def n_mels(self) -> int:
        return self.config.n_mels

    def forward(
        self,
        waveform: Tensor,
        lengths: Tensor | Sequence[int] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """See :func:`log_mel_filterbank`. Returns ``(features, frame_lengths)``."""
        cfg = self.config
        if cfg.dither > 0 and not self.training:
            cfg = cfg.replace(dither=0.0)
        return log_mel_filterbank(
            waveform, lengths, cfg, generator=generator, window=self.window,
            mel_matrix=self.mel_matrix,
        )  # fmt: skip

    def frames_for(self, samples: int | Tensor) -> int | Tensor:
        """Frames an utterance of ``samples`` samples yields (:meth:`FbankConfig.frames_for`)."""
        return self.config.frames_for(samples)

    def stream(self) -> FilterbankStream:
        """A fresh :class:`FilterbankStream` with this module's configuration."""
        return FilterbankStream(self.config)

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"sample_rate={c.sample_rate}, n_mels={c.n_mels}, win_ms={c.win_ms:g}, "
            f"hop_ms={c.hop_ms:g}, n_fft={c.fft_size}, framing={c.framing!r}, "
            f"mel_filters={c.mel_filters!r}, log={c.log!r}"
        )


class FilterbankStream:
    """Chunk-by-chunk features that equal the whole-utterance features frame for frame.

    ``push(chunk)`` takes ``(batch, samples)`` audio (all items advance together) and returns
    the ``(batch, new_frames, n_mels)`` frames now complete; ``flush()`` ends the stream and
    returns the rest (with centred framing, the frames that overlap the right zero padding).
    After a stream of ``n`` samples, ``push`` has returned ``config.frames_ready(n)`` frames and
    ``push`` + ``flush`` together ``config.frames_for(n)``. It keeps at most one frame's extent of
    audio. Needs ``top_db=None`` (a clip relative to the utterance's maximum cannot stream) and
    no dither.
    """

    def __init__(self, config: FbankConfig | None = None, **options: Any) -> None:
        cfg = _resolve(config, options)
        if cfg.top_db is not None:
            raise ValueError(
                "FilterbankStream needs top_db=None: top_db clips relative to the whole "
                "utterance's maximum, which a stream does not know in advance"
            )
        if cfg.dither > 0:
            raise ValueError("FilterbankStream needs dither=0 (dither is not reproducible)")
        self.config = cfg
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next push starts a new stream."""
        self._buf: Tensor | None = None  # padded-stream samples from index self._buf_start
        self._buf_start = 0
        self._next_frame = 0
        self._samples = 0
        self._closed = False
        self._window: Tensor | None = None
        self._mel: Tensor | None = None

    @property
    def samples_seen(self) -> int:
        """Samples pushed so far."""
        return self._samples

    @property
    def frames_emitted(self) -> int:
        """Frames returned so far."""
        return self._next_frame

    def push(self, chunk: Tensor) -> Tensor:
        """Add ``(batch, samples)`` audio; return the newly complete frames."""
        if self._closed:
            raise RuntimeError("stream already flushed; call reset() to start a new one")
        if not isinstance(chunk, Tensor) or chunk.dim() != 2 or not chunk.is_floating_point():
            raise ValueError(
                "chunk must be a floating-point tensor of shape (batch, samples), got "
                f"{getattr(chunk, 'dtype', type(chunk).__name__)} "
                f"{tuple(getattr(chunk, 'shape', ()))}"
            )
        if not bool(torch.isfinite(chunk).all()):
            raise ValueError("chunk contains NaN or inf")
        dtype = chunk.dtype if chunk.dtype in (torch.float32, torch.float64) else torch.float32
        chunk = chunk.to(dtype)
        if self._buf is None:
            self._buf = chunk.new_zeros(chunk.shape[0], self.config._pad)
            self._window = feature_window(self.config, dtype).to(chunk.device)
            self._mel = mel_filter_matrix(self.config, dtype).to(chunk.device)
        elif chunk.shape[0] != self._buf.shape[0]:
            raise ValueError(
                f"chunk has batch {chunk.shape[0]}, the stream has batch {self._buf.shape[0]}"
            )
        self._buf = torch.cat([self._buf, chunk.to(self._buf.dtype)], dim=1)
        self._samples += chunk.shape[1]
        return self._emit()

    def flush(self) -> Tensor:
        """End the stream; return its remaining frames (possibly none)."""
        if self._closed:
            raise RuntimeError("stream already flushed; call reset() to start a new one")
        if self._buf is None:
            raise RuntimeError("empty audio: nothing was pushed to the stream")
        self._buf = F.pad(self._buf, (0, self.config._pad))
        out = self._emit()
        self._closed = True
        return out

    def _emit(self) -> Tensor:
        assert self._buf is not None and self._window is not None and self._mel is not None
        cfg = self.config
        hop, avail = cfg.hop_length, self._buf_start + self._buf.shape[1]
        total = (avail - cfg._extent) // hop + 1 if avail >= cfg._extent else 0
        count = max(0, total - self._next_frame)
        if count == 0:
            return self._buf.new_zeros(self._buf.shape[0], 0, cfg.n_mels)
        start = self._next_frame * hop + cfg._offset - self._buf_start
        stop = start + (count - 1) * hop + cfg.win_length
        frames = self._buf[:, start:stop].unfold(-1, cfg.win_length, hop)
        out = _frames_to_logmel(frames, cfg, self._window, self._mel)
        self._next_frame += count
        keep_from = self._next_frame * hop - self._buf_start
        self._buf = self._buf[:, keep_from:]
        self._buf_start += keep_from
        return out


# Standardisation -------------------------------------------------------------------------------


def _check_features(features: Tensor, what: str) -> None:
    """The encoders' check of a feature batch (:func:`sparse.snn.check_sequence`, same
    messages), for any channel count and none of frames; finiteness is checked on the valid
    frames only (:func:`_valid_frames`)."""
    check_sequence(features, None, what, "features", allow_empty=True, finite=False)


def _valid_frames(features: Tensor, lengths: Any, what: str) -> tuple[Tensor, Tensor]:
    """Validated frame lengths and the ``(batch, frames, 1)`` validity mask; checks finiteness."""
    batch, n_frames, _ = features.shape
    lens = check_lengths(lengths, batch, n_frames, features.device, minimum=0, what="frame")
    mask = length_mask(lens, n_frames)[:, :, None]
    finite = torch.isfinite(features) | ~mask
    if not bool(finite.all()):
        i = int((~finite).flatten(1).any(dim=1).nonzero()[0, 0])
        raise ValueError(f"{what}: features of item {i} contain NaN or inf in valid frames")
    return lens, mask


def utterance_standardize(
    features: Tensor,
    lengths: Tensor | Sequence[int] | None = None,
    *,
    normalize_variance: bool = True,
    eps: float = 1e-5,
) -> Tensor:
    """Per-utterance, per-channel standardisation: subtract the mean (and divide by the
    standard deviation) over valid frames.

    Args:
        features: ``(batch, frames, channels)``.
        lengths: valid frames per item, ``(batch,)`` in [0, frames]; ``None`` = all.
        normalize_variance: divide by the standard deviation too (population, ddof=0).
        eps: the standard deviation is clamped to at least ``eps``.

    Returns:
        ``(batch, frames, channels)``; padded frames are 0 and never enter the statistics.
    """
    _check_features(features, "utterance_standardize")
    _, mask = _valid_frames(features, lengths, "utterance_standardize")
    dtype = features.dtype if features.dtype == torch.float64 else torch.float32
    x = features.to(dtype).masked_fill(~mask, 0.0)
    count = mask.sum(dim=1, keepdim=True).clamp_min(1).to(dtype)
    mean = x.sum(dim=1, keepdim=True) / count
    centred = (x - mean).masked_fill(~mask, 0.0)
    if normalize_variance:
        var = centred.square().sum(dim=1, keepdim=True) / count
        centred = centred / var.sqrt().clamp_min(eps)
    return centred.to(features.dtype)


class UtteranceStandardization(nn.Module):
    """:func:`utterance_standardize` as a module (no state)."""

    def __init__(self, normalize_variance: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.normalize_variance = normalize_variance
        self.eps = eps

    def forward(self, features: Tensor, lengths: Tensor | Sequence[int] | None = None) -> Tensor:
        """``(batch, frames, channels)`` -> same shape, padded frames 0."""
        return utterance_standardize(
            features, lengths, normalize_variance=self.normalize_variance, eps=self.eps
        )

    def extra_repr(self) -> str:
        return f"normalize_variance={self.normalize_variance}, eps={self.eps:g}"


class GlobalStandardization(nn.Module):
    """Mean/variance standardisation with running statistics over all valid training frames.

    In training mode each batch's valid frames (padding excluded) are merged into the running
    count, mean and sum of squared deviations (float64, Chan's exact parallel update, so the
    statistics equal the mean and population variance of every valid frame seen so far), then
    the batch is standardised with the updated statistics. In eval mode, or when ``frozen`` is
    True, the statistics are used as they are. They are buffers, saved in the ``state_dict``.
    Under ``torch.distributed`` (``sync_distributed=True``) the batch statistics are summed
    over all processes first, so every rank holds the same statistics.

    Args:
        n_features: channels (e.g. ``n_mels``).
        normalize_variance: divide by the running standard deviation too.
        eps: the standard deviation is clamped to at least ``eps``.
        sync_distributed: all-reduce batch statistics when a process group is initialised.

    Shapes: ``forward(features (batch, frames, n_features), lengths (batch,) frames)`` ->
    ``(batch, frames, n_features)`` with padded frames 0.
    """

    count: Tensor
    mean: Tensor
    m2: Tensor

    def __init__(
        self,
        n_features: int,
        *,
        normalize_variance: bool = True,
        eps: float = 1e-5,
        sync_distributed: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
            raise ValueError(f"n_features must be a positive int, got {n_features!r}")
        self.n_features = n_features
        self.normalize_variance = normalize_variance
        self.eps = eps
        self.sync_distributed = sync_distributed
        self.frozen = False
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("m2", torch.zeros(n_features, dtype=torch.float64))

    @property
    def var(self) -> Tensor:
        """Running population variance, ``(n_features,)`` float64."""
        return self.m2 / self.count.clamp_min(1.0)

    @property
    def std(self) -> Tensor:
        """Running standard deviation, clamped to at least ``eps``."""
        return self.var.sqrt().clamp_min(self.eps)

    def reset(self) -> None:
        """Forget all statistics."""
        self.count.zero_()
        self.mean.zero_()
        self.m2.zero_()

    def _check(self, features: Tensor, lengths: Any) -> Tensor:
        _check_features(features, "GlobalStandardization")
        if features.shape[-1] != self.n_features:
            raise ValueError(
                f"GlobalStandardization: expected {self.n_features} channels, got "
                f"{features.shape[-1]} (features shape {tuple(features.shape)})"
            )
        return _valid_frames(features, lengths, "GlobalStandardization")[1]

    @torch.no_grad()
    def update(self, features: Tensor, lengths: Tensor | Sequence[int] | None = None) -> None:
        """Merge the valid frames of ``features`` into the running statistics."""
        mask = self._check(features, lengths)
        x = features.detach().to(torch.float64).masked_fill(~mask, 0.0)
        m = mask.to(torch.float64)
        n = m.sum()
        total = (x * m).sum(dim=(0, 1))
        distributed = (
            self.sync_distributed
            and torch.distributed.is_available()
            and torch.distributed.is_initialized()
        )
        if distributed:
            packed = torch.cat([n.reshape(1), total])
            torch.distributed.all_reduce(packed)
            n, total = packed[0], packed[1:]
        if float(n) == 0:
            return
        batch_mean = total / n
        batch_m2 = (((x - batch_mean) * m) ** 2).sum(dim=(0, 1))
        if distributed:
            torch.distributed.all_reduce(batch_m2)
        count = self.count.to(x.device)
        mean = self.mean.to(x.device)
        new_count = count + n
        delta = batch_mean - mean
        self.mean.copy_(mean + delta * (n / new_count))
        self.m2.copy_(self.m2.to(x.device) + batch_m2 + delta.square() * (count * n / new_count))
        self.count.copy_(new_count)

    def forward(self, features: Tensor, lengths: Tensor | Sequence[int] | None = None) -> Tensor:
        """Update (training, not frozen), then standardise; padded frames are 0."""
        mask = self._check(features, lengths)
        if self.training and not self.frozen:
            self.update(features, lengths)
        if float(self.count) == 0:
            raise RuntimeError(
                "GlobalStandardization has no statistics yet: run it in training mode on data (or "
                "call update()), or load a state_dict, before using it in eval mode or frozen"
            )
        dtype = features.dtype if features.dtype == torch.float64 else torch.float32
        out = features.to(dtype) - self.mean.to(dtype)
        if self.normalize_variance:
            out = out / self.std.to(dtype)
        return out.masked_fill(~mask, 0.0).to(features.dtype)

    def extra_repr(self) -> str:
        return (
            f"n_features={self.n_features}, normalize_variance={self.normalize_variance}, "
            f"eps={self.eps:g}, frames_seen={int(self.count)}"
        )


#: former names -> their new names (kept for one release)
__getattr__ = moved_names(__name__, {
    "GlobalNormalization": (__name__, "GlobalStandardization"),
    "UtteranceNormalization": (__name__, "UtteranceStandardization"),
    "utterance_normalize": (__name__, "utterance_standardize"),
})
