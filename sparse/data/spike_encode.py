"""Audio to spike trains in the SHD/SSC file format, so that the spike task runs without a
download: ``sparse synth --spikes`` writes the synthesised keyword corpus this way.

The encoding is a simple, deterministic stand-in for a cochlea model, with 700 channels as in
SHD/SSC (it is not the model those corpora were made with):

1. the power spectrum of 25 ms Hann windows every 1 ms (512-point FFT), in dB;
2. 700 channels whose centre frequencies follow the Greenwood map of the human cochlea from
   50 Hz to 7.5 kHz (channel 0 lowest), each the dB spectrum interpolated at its centre;
3. per clip, each channel's level relative to the clip's loudest value (or, in a clip quieter
   than that, to 60 dB below the spectral peak of a full-scale sine): 0 at 40 dB below it or
   lower, 1 at it;
4. one integrate-and-fire neuron per channel, firing at ``level * 100`` Hz: it adds
   ``rate * 1 ms`` each step, starting from 0.5, and spikes (at the step's time) whenever the
   sum crosses a whole number.

The same clip always gives the same spikes. Files: ``shd_<split>.h5`` with ``spikes/times``
(seconds, float32) and ``spikes/units`` (uint16) per clip, ``labels`` (uint16),
``extra/keys`` (the class names), ``extra/speaker`` (uint16, speakers numbered in name order
over the splits) and ``extra/meta_info`` (``gender``, ``age``, ``body_height``: unknown for
synthesised speakers, written as 0), the layout of the published files.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import replacing

__all__ = ["CHANNELS", "cochlea_spikes", "encode_keyword_corpus", "encode_synth_corpus",
           "write_spike_file"]

CHANNELS = 700
_HOP_S = 0.001
_WIN_S = 0.025
_N_FFT = 512
_RANGE_DB = 40.0
_MAX_RATE_HZ = 100.0
_F_MIN, _F_MAX = 50.0, 7500.0
#: the loudest level (dB) a clip's levels are taken relative to at least: 60 dB below the
#: spectral peak of a full-scale sine (about +40 dB with these windows)
_QUIET_DB = -20.0
#: the version of this encoding, recorded beside the files: a change rebuilds them
ENCODING_VERSION = 1


def greenwood_frequencies(n: int = CHANNELS, f_min: float = _F_MIN, f_max: float = _F_MAX
                          ) -> np.ndarray:
    """``n`` centre frequencies (Hz), equally spaced along the human cochlea (Greenwood 1990:
    ``f = 165.4 (10^(2.1 x) - 0.88)``, ``x`` the relative place), lowest first."""
    def place(f: float) -> float:
        return float(np.log10(f / 165.4 + 0.88) / 2.1)

    x = np.linspace(place(f_min), place(f_max), n)
    return 165.4 * (10.0 ** (2.1 * x) - 0.88)


@functools.lru_cache(maxsize=4)
def _interpolation(sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For every channel: the FFT bin just below its centre frequency ``(CHANNELS,)`` and
    the weight of the bin above it ``(CHANNELS, 1)`` (linear interpolation)."""
    bins = np.fft.rfftfreq(_N_FFT, 1.0 / sample_rate)
    pos = np.interp(greenwood_frequencies(), bins, np.arange(len(bins)))
    low = np.minimum(np.floor(pos).astype(np.int64), len(bins) - 2)
    frac = (pos - low).astype(np.float32)
    return torch.from_numpy(low), torch.from_numpy(frac).unsqueeze(1)


def cochlea_spikes(wave: np.ndarray, sample_rate: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """The spikes of one clip (the module's encoding).

    Args:
        wave: samples ``(n,)`` in [-1, 1] at ``sample_rate`` Hz.

    Returns:
        ``times`` (seconds, float32, ascending) and ``units`` (channel, uint16), ``(spikes,)``;
        spikes of the same step are in channel order.
    """
    x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    hop, win = round(_HOP_S * sample_rate), round(_WIN_S * sample_rate)
    spec = torch.stft(x, _N_FFT, hop_length=hop, win_length=win,
                      window=torch.hann_window(win), center=True, return_complex=True)
    db = 10.0 * torch.log10(spec.real.square() + spec.imag.square() + 1e-10)  # (bins, frames)
    low, frac = _interpolation(sample_rate)
    channel_db = db[low] * (1.0 - frac) + db[low + 1] * frac                   # (700, frames)
    top = max(float(channel_db.max()), _QUIET_DB)  # a silent clip stays silent
    level = ((channel_db - top + _RANGE_DB) / _RANGE_DB).clamp(0.0, 1.0)
    # integrate-and-fire: a spike wherever the running sum passes a whole number
    count = torch.floor(0.5 + torch.cumsum(level * (_MAX_RATE_HZ * _HOP_S), dim=1))
    fired = torch.diff(count, dim=1, prepend=torch.zeros_like(count[:, :1]))
    frames, units = torch.nonzero(fired.T > 0, as_tuple=True)  # in time order
    times = frames.numpy() * np.float32(_HOP_S)
    return times.astype(np.float32), units.numpy().astype(np.uint16)


def write_spike_file(path: Path, trains: list[tuple[np.ndarray, np.ndarray]],
                     labels: list[int], speakers: list[int], keys: list[str]) -> Path:
    """Write an SHD/SSC-format file (atomically: a temporary file, then renamed).

    ``trains``: ``(times, units)`` per sample; ``labels``: class index per sample;
    ``speakers``: speaker number per sample; ``keys``: the class names."""
    import h5py

    path = Path(path)
    n = len(trains)
    with replacing(path) as tmp:
        with h5py.File(tmp, "w") as f:
            times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float32))
            units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
            for i, (t, u) in enumerate(trains):
                times[i], units[i] = t, u
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
            f.create_dataset("extra/speaker", data=np.asarray(speakers, dtype=np.uint16))
            f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys]))
            for name in ("gender", "age", "body_height"):
                f.create_dataset(f"extra/meta_info/{name}", data=np.zeros(n, dtype=np.uint16))
    return path


def _encode_split(ds: Any, speaker_ids: dict[str, int], verbose: bool) -> dict[str, Any]:
    trains, labels, speakers = [], [], []
    for i in range(len(ds)):
        item = ds.read(i)
        wave = item["waveform"]
        trains.append(cochlea_spikes(wave.numpy() if hasattr(wave, "numpy") else wave,
                                     ds.sample_rate))
        labels.append(int(item["label_index"]))
        speakers.append(speaker_ids[ds.manifest[i].speaker])
        if verbose and (i + 1) % 2000 == 0:
            print(f"  spikes: {ds.split} {i + 1}/{len(ds)}", flush=True)
    return {"trains": trains, "labels": labels, "speakers": speakers}


def encode_synth_corpus(corpus: Any, verbose: bool = False) -> Path:
    """The spike version of a synthesised corpus (a :class:`~sparse.data.synth.SynthCorpus`):
    its keyword clips in ``<corpus>/shd`` (see :func:`encode_keyword_corpus`), listed among the
    corpus's files so that a rebuild replaces them too. Returns the folder."""
    from .synth import record_added_files

    out = Path(corpus.root) / "shd"
    paths = encode_keyword_corpus(corpus.speech_commands_root, out, verbose)
    record_added_files(corpus.root, [*paths.values(), out / "encoding.txt"])
    return out


def encode_keyword_corpus(keywords_root: Path, out_dir: Path, verbose: bool = False
                          ) -> dict[str, Path]:
    """``shd_train.h5``, ``shd_valid.h5`` and ``shd_test.h5`` in ``out_dir``: every clip of
    the Speech Commands folder ``keywords_root`` (its 'all' classes) encoded with
    :func:`cochlea_spikes`. Files already written by this encoding version are kept."""
    from .speech_commands import SpeechCommandsDataset

    out_dir = Path(out_dir)
    stamp = out_dir / "encoding.txt"
    splits = ("train", "valid", "test")
    paths = {s: out_dir / f"shd_{s}.h5" for s in splits}
    if stamp.is_file() and stamp.read_text().strip() == str(ENCODING_VERSION) \
            and all(p.is_file() for p in paths.values()):
        return paths
    sets = {s: SpeechCommandsDataset(keywords_root, split=s, task="all") for s in splits}
    names = sorted({e.speaker for ds in sets.values() for e in ds.manifest})
    speaker_ids = {name: k for k, name in enumerate(names)}
    for s, ds in sets.items():
        enc = _encode_split(ds, speaker_ids, verbose)
        write_spike_file(paths[s], enc["trains"], enc["labels"], enc["speakers"], ds.classes)
    stamp.write_text(f"{ENCODING_VERSION}\n")
    return paths
