"""Training augmentation on the waveform: additive noise, speed perturbation, dropped
frequency bands and dropped chunks, applied in that order to a copy of every training batch.

This is the augmentation of the original SPARSE code's TIMIT recipe (its SpeechBrain
augmenter chains AddNoise at 0-15 dB, SpeedPerturb 95/100/105 %, DropFreq with 1-3 bands and
DropChunk with 1-5 chunks of 1,000-2,000 samples, and trains on each batch together with the
augmented copy). Training otherwise reads features from the cache (:mod:`sparse.train.data`),
so the data flow is:

* the clean half of a batch is the cached features, exactly as without augmentation;
* the augmented half re-reads the batch's audio (:meth:`read` of the split's dataset), applies
  the four operations to each waveform, and computes its log-mel features with the same front
  end, then the two halves are padded to one length and stacked (the batch doubles).

Every draw of a batch comes from a generator seeded with ``(seed, epoch, step, rank)``
(:func:`batch_generator`), never from the global generators, so a run is reproducible and a
resumed run draws exactly what the uninterrupted run drew, without storing any state.

The operations are plain functions of a waveform ``(num_samples,)`` (float32 tensor) and
their drawn parameters, so each can be checked on its own; :func:`augment_waveform` draws the
parameters of one utterance and applies the chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..lengths import length_mask

if TYPE_CHECKING:
    import torch

__all__ = ["AugmentConfig", "add_noise", "augment_waveform", "batch_generator",
           "concat_augmented", "drop_bands", "drop_chunks", "load_noises", "make_augmenter",
           "noise_folder", "speed_perturb"]


def _f(default: Any, doc: str) -> Any:
    """A dataclass field with a default (copied if a list) and its documentation (the same
    convention as :mod:`sparse.train.config`)."""
    if isinstance(default, list):
        return field(default_factory=lambda d=default: list(d), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class AugmentConfig:
    """Waveform augmentation of the training batches (off by default): each batch is trained
    on together with a copy that got additive noise, a speed change, dropped frequency bands
    and dropped chunks, in that order; the defaults are the original SPARSE code's values."""

    enabled: bool = _f(False, "augment the training batches")
    concat_original: bool = _f(
        True, "train on every batch and its augmented copy (the batch doubles, as in the "
        "original SPARSE code); false: the augmented copy replaces the batch")
    snr_db: list[float] | None = _f(
        [0.0, 15.0], "range [low, high] of the signal-to-noise ratio in dB, drawn uniformly per "
        "utterance, at which a stretch of a noise file is added (speech power over the whole "
        "utterance); null: no added noise")
    noise_dir: str | None = _f(
        None, "folder of noise .wav files; null: the corpus's own noise files (its "
        "_background_noise_ folder; for the synthesised corpus the same folder serves both "
        "tasks)")
    speeds: list[int] = _f(
        [95, 100, 105], "speed changes in percent, one drawn per utterance: the waveform is "
        "resampled to 100/speed times its length (105: 5 % shorter, faster and higher); [100]: "
        "none")
    drop_freq_count: list[int] = _f(
        [1, 3], "range [low, high] of the number of frequency bands removed per utterance; "
        "[0, 0]: none")
    drop_freq_width: float = _f(
        0.05, "half-width of each removed band as a share of the Nyquist frequency (0.05 at "
        "16 kHz: 800 Hz wide); the centres are drawn uniformly from 0 to the Nyquist frequency")
    drop_chunk_count: list[int] = _f(
        [1, 5], "range [low, high] of the number of stretches set to zero per utterance; "
        "[0, 0]: none")
    drop_chunk_ms: list[float] = _f(
        [62.5, 125.0], "range [low, high] of the length of each zeroed stretch in ms (the "
        "original SPARSE code's 1,000-2,000 samples at 16 kHz)")


# ------------------------------------------------------------------------------ randomness


def batch_generator(seed: int, epoch: int, step: int, rank: int = 0) -> torch.Generator:
    """The generator of the augmentation of one batch: a pure function of the run's seed, the
    epoch, the step in the epoch and the process, so that a resumed run redraws exactly the
    augmentation the uninterrupted run drew (and the global generators, which dropout uses,
    are never touched)."""
    import torch

    digest = hashlib.sha256(f"augment/{seed}/{epoch}/{step}/{rank}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    import torch

    return low + (high - low) * float(torch.rand((), generator=g, dtype=torch.float64))


def _integer(g: torch.Generator, low: int, high: int) -> int:
    """An integer drawn uniformly from ``low`` to ``high``, both included."""
    import torch

    return int(torch.randint(low, high + 1, (), generator=g))


# ------------------------------------------------------------------------------ operations


def add_noise(wave: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """``wave`` plus ``noise`` scaled so that their power ratio is ``snr_db``.

    Args:
        wave: ``(n,)`` float32 samples.
        noise: ``(n,)`` float32 samples (any level).
        snr_db: wanted ratio of the power of ``wave`` to the power of the added noise, dB,
            both over the whole length (as the original SPARSE code's AddNoise, which
            measures the RMS of the whole utterance).

    Returns:
        ``(n,)`` float32; ``wave`` unchanged when it or ``noise`` is silent.
    """
    import torch

    p_s = float(wave.double().square().mean()) if wave.numel() else 0.0
    p_n = float(noise.double().square().mean()) if noise.numel() else 0.0
    if p_s == 0.0 or p_n == 0.0:
        return wave.clone()
    scale = (p_s / (p_n * 10.0 ** (snr_db / 10.0))) ** 0.5
    return (wave.double() + scale * noise.double()).to(torch.float32)


def noise_stretch(noise: torch.Tensor, n: int, offset: int) -> torch.Tensor:
    """``n`` samples of ``noise`` from ``offset`` on, wrapping around its end (a noise file
    shorter than the utterance is repeated)."""
    import torch

    idx = (torch.arange(n) + offset) % noise.shape[0]
    return noise[idx]


def speed_perturb(wave: torch.Tensor, speed: int) -> torch.Tensor:
    """The waveform played at ``speed`` percent: resampled from ``speed`` to 100 (polyphase,
    anti-aliased), so it has ``ceil(n * 100 / speed)`` samples and its pitch and tempo change
    together (the original SPARSE code's SpeedPerturb does the same)."""
    import torch

    from ..data.audio import resample

    if speed == 100:
        return wave.clone()
    return torch.from_numpy(resample(wave.numpy(), int(speed), 100).copy())


def drop_bands(wave: torch.Tensor, bands: list[tuple[float, float]], sample_rate: int
               ) -> torch.Tensor:
    """``wave`` with every frequency in the ``bands`` removed.

    Args:
        wave: ``(n,)`` float32.
        bands: ``(low_hz, high_hz)`` pairs; the FFT bins inside any of them are set to zero.
            The FFT is over the whole waveform zero-padded to the next fast FFT length (a
            length with a large prime factor takes several times longer, and the speed change
            makes such lengths): exact when ``n`` is such a length, else the band keeps about
            40 dB less energy than before (the original SPARSE code's 101-tap notch filter
            leaves more of it).
        sample_rate: Hz.

    Returns:
        ``(n,)`` float32.
    """
    import torch
    from scipy.fft import next_fast_len

    if not bands or wave.numel() < 2:
        return wave.clone()
    n = wave.shape[0]
    m = next_fast_len(n, real=True)
    spec = torch.fft.rfft(wave.float(), m)
    freqs = torch.fft.rfftfreq(m, d=1.0 / sample_rate, dtype=torch.float64)
    stop = torch.zeros_like(freqs, dtype=torch.bool)
    for low, high in bands:
        stop |= (freqs >= low) & (freqs <= high)
    spec[stop] = 0
    return torch.fft.irfft(spec, m)[:n].contiguous()


def drop_chunks(wave: torch.Tensor, chunks: list[tuple[int, int]]) -> torch.Tensor:
    """``wave`` with the samples ``start:start + length`` of every ``(start, length)`` in
    ``chunks`` set to zero."""
    out = wave.clone()
    for start, length in chunks:
        out[start:start + length] = 0.0
    return out


def augment_waveform(wave: torch.Tensor, cfg: AugmentConfig, sample_rate: int,
                     noises: list[torch.Tensor], g: torch.Generator
                     ) -> tuple[torch.Tensor, dict[str, Any]]:
    """Draw the augmentation of one utterance from ``g`` and apply it: noise, speed, bands,
    chunks (the original SPARSE code's order).

    Args:
        wave: ``(n,)`` float32 samples at ``sample_rate``.
        cfg: the ``augment`` section.
        noises: noise waveforms at ``sample_rate`` (may be empty when ``cfg.snr_db`` is
            null).
        g: the batch's generator (:func:`batch_generator`).

    Returns:
        The augmented ``(m,)`` float32 waveform (``m`` changes with the speed) and what was
        drawn: ``snr_db``, ``noise`` (file index), ``speed``, ``bands`` (Hz), ``chunks``
        (``(start, length)`` in samples of the sped-up waveform).
    """
    drawn: dict[str, Any] = {"snr_db": None, "noise": None}
    x = wave
    if cfg.snr_db is not None and noises:
        drawn["snr_db"] = _uniform(g, *cfg.snr_db)
        drawn["noise"] = _integer(g, 0, len(noises) - 1)
        noise = noises[drawn["noise"]]
        offset = _integer(g, 0, noise.shape[0] - 1)
        x = add_noise(x, noise_stretch(noise, x.shape[0], offset), drawn["snr_db"])
    drawn["speed"] = cfg.speeds[_integer(g, 0, len(cfg.speeds) - 1)]
    x = speed_perturb(x, drawn["speed"])
    nyquist = sample_rate / 2.0
    half = cfg.drop_freq_width * nyquist
    drawn["bands"] = []
    for _ in range(_integer(g, *cfg.drop_freq_count)):
        centre = _uniform(g, 0.0, nyquist)
        drawn["bands"].append((max(0.0, centre - half), min(nyquist, centre + half)))
    x = drop_bands(x, drawn["bands"], sample_rate)
    n = x.shape[0]
    low, high = (max(1, round(ms * sample_rate / 1000.0)) for ms in cfg.drop_chunk_ms)
    drawn["chunks"] = []
    for _ in range(_integer(g, *cfg.drop_chunk_count)):
        length = min(n, _integer(g, low, high))
        drawn["chunks"].append((_integer(g, 0, n - length), length))
    x = drop_chunks(x, drawn["chunks"])
    return x, drawn


# ------------------------------------------------------------------------------ batches


def _pad_cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Stack two ``(B, T, ...)`` tensors along the batch after zero-padding both to the
    longer ``T``."""
    import torch.nn.functional as F

    t = max(a.shape[1], b.shape[1])

    def pad(x: torch.Tensor) -> torch.Tensor:
        extra = [0, 0] * (x.dim() - 2) + [0, t - x.shape[1]]
        return F.pad(x, extra)

    import torch

    return torch.cat([pad(a), pad(b)])


def concat_augmented(batch: dict[str, torch.Tensor], features: torch.Tensor,
                     lengths: torch.Tensor, concat_original: bool) -> dict[str, torch.Tensor]:
    """The training batch with the augmented copy's ``features`` ``(B, T', n_mels)`` and
    ``lengths`` ``(B,)``: stacked after the clean batch (``2B`` utterances, targets repeated)
    or in its place."""
    import torch

    if not concat_original:
        return {**batch, "features": features, "lengths": lengths}
    out = {"features": _pad_cat(batch["features"], features),
           "lengths": torch.cat([batch["lengths"], lengths])}
    for key in ("labels", "targets", "target_lengths"):
        if key in batch:
            out[key] = torch.cat([batch[key], batch[key]])
    return out


# ------------------------------------------------------------------------------ the run


def noise_folder(cfg: Any, root: Path) -> Path:
    """The folder of noise files of a run: ``augment.noise_dir``, else the corpus's own
    ``_background_noise_`` (the synthesised corpus keeps it in its Speech Commands folder,
    next to the TIMIT-layout folder the ASR task reads)."""
    if cfg.augment.noise_dir is not None:
        return Path(cfg.augment.noise_dir).expanduser()
    own = Path(root) / "_background_noise_"
    sibling = Path(root).parent / "speech_commands" / "_background_noise_"
    if not own.is_dir() and cfg.data.corpus == "synth" and sibling.is_dir():
        return sibling
    return own


def load_noises(folder: Path, sample_rate: int) -> list[torch.Tensor]:
    """Every ``.wav`` file of ``folder`` (sorted by name), mono, at ``sample_rate``.

    Raises:
        DataError: the folder is missing or holds no .wav file, or a file is unreadable,
            silent or holds non-finite samples (the message names it and the config key).
    """
    import torch

    from ..data.audio import AudioError, load_audio
    from .data import DataError

    hint = ("augment.noise_dir names a folder of noise .wav files (null: the corpus's own "
            "_background_noise_ folder); or set augment.snr_db=null to add no noise")
    if not folder.is_dir():
        raise DataError(f"the noise folder {folder} does not exist: {hint}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav")
    if not files:
        raise DataError(f"the noise folder {folder} holds no .wav file: {hint}")
    out = []
    for p in files:
        try:
            x, _ = load_audio(p, sample_rate)
        except AudioError as exc:
            raise DataError(f"cannot read noise file {exc.path}: {exc.problem} ({hint})"
                               ) from None
        if not bool((x != 0).any()):
            raise DataError(f"noise file {p} is silent (all samples zero): {hint}")
        out.append(torch.from_numpy(x))
    return out


def make_augmenter(cfg: Any, root: Path, ids: list[str], rank: int = 0
                   ) -> Callable[[dict[str, torch.Tensor], list[int], int, int],
                                 dict[str, torch.Tensor]]:
    """The function the trainer applies to every training batch:
    ``augment(batch, indices, epoch, step) -> batch``.

    Args:
        cfg: the run's config (its ``augment``, ``features``, ``data`` and ``seed``).
        root: the corpus folder.
        ids: the utterance ids of the training feature set, in its order (``indices`` of a
            batch index this list).
        rank: the process under torchrun (each draws its own augmentation).

    Raises:
        DataError: the noise files (see :func:`load_noises`).
    """
    import torch

    from ..data.audio import AudioError
    from ..features import LogMelFilterbank
    from .data import DataError, _dataset

    a, fc = cfg.augment, cfg.features
    noises = load_noises(noise_folder(cfg, root), fc.sample_rate) if a.snr_db is not None \
        else []
    ds = _dataset(cfg, root, cfg.data.train_split)
    where = {e.id: i for i, e in enumerate(ds.manifest)}
    fbank = LogMelFilterbank(n_mels=fc.n_mels, hop_ms=fc.hop_ms, win_ms=fc.win_ms,
                             sample_rate=fc.sample_rate)

    def read(i: int) -> torch.Tensor:
        try:
            return ds.read(where[ids[i]])["waveform"]
        except AudioError as exc:  # the file changed since its features were computed
            raise DataError(f"cannot read audio file {exc.path} for augmentation: "
                            f"{exc.problem}") from None

    @torch.no_grad()
    def augment(batch: dict[str, torch.Tensor], indices: list[int], epoch: int, step: int
                ) -> dict[str, torch.Tensor]:
        g = batch_generator(cfg.seed, epoch, step, rank)
        waves = [augment_waveform(read(i), a, fc.sample_rate, noises, g)[0] for i in indices]
        lens = torch.tensor([w.shape[0] for w in waves])
        wav = torch.zeros(len(waves), int(lens.max()))
        for k, w in enumerate(waves):
            wav[k, :w.shape[0]] = w
        feats, flens = fbank(wav, lens)
        # zero past each length, as the collated clean half is
        feats = feats.float() * length_mask(flens, feats.shape[1]).unsqueeze(-1)
        return concat_augmented(batch, feats, flens.long(), a.concat_original)

    return augment


__all__ += ["noise_stretch"]
