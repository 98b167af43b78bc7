"""The embedded default corpus: speech synthesised on the user's machine with espeak-ng.

Two parts, written under one root::

    <root>/corpus.json                 config, counts per split, generation time, size
    <root>/contents.tsv                every file and folder the build wrote (and file sizes)
    <root>/speakers.tsv                every speaker: id, part, split, accent, variant, ...
    <root>/timit/train|test/drN/<speaker>/<utt>.wav|.phn|.wrd|.txt      (TIMIT layout)
    <root>/speech_commands/<word>/<hash>_nohash_<k>.wav                   (Speech Commands)
    <root>/speech_commands/validation_list.txt, testing_list.txt, _background_noise_/*.wav

* **sentences** (TIMIT layout, 16 kHz, 16-bit): 4-12 words from a vocabulary of
  :func:`~sparse.data.words.load_vocabulary` words, with TIMIT-61 phone labels and word
  boundaries from the engine's own phoneme timings (:mod:`sparse.data.alignment`). The
  validation speakers carry the names of the 50 standard TIMIT dev speakers and the test
  speakers those of the 24 core-test speakers, both under ``test/``, so that any TIMIT tool
  (ours, SpeechBrain's ``timit_prepare``) finds the standard splits.
* **keywords** (Speech Commands layout, 1 s clips at 16 kHz): the 35 words of Speech Commands
  v2, each speaker saying every word ``keyword_repeats`` times.

A speaker is a fixed accent (espeak voice, also its TIMIT dialect region), voice variant, base
pitch, pitch range and speaking rate; training, validation and test speakers are disjoint and
no (accent, variant) pair is shared between splits of a part. Each utterance varies the rate,
pitch, range, loudness, the silence around the speech and the background noise (coloured
noise or hum at a random SNR).

The corpus is a pure function of :class:`SynthConfig` (seed included): it is built in a
temporary folder, by several processes, and renamed into place when complete; a second call
with the same config finds it and returns at once.

Rebuilding a folder in place (``force``) deletes only what a previous build wrote there, as
``contents.tsv`` lists it; a folder that holds anything else is refused, and so is a folder that
is not a corpus at all (see :func:`synthesize_corpus`). One rebuild of a folder runs at a time:
it holds the folder's lock (:func:`sparse.train.lock.replacement_lock`, a file beside the
folder), and a second rebuild, or a call that would use the corpus being replaced, is refused
with an error naming the process that holds it.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from .. import atomic
from .alignment import Segment, align, rescale
from .audio import resample
from .noise import coloured_noise, hum, mix_at_snr, random_noise
from .words import KEYWORDS, load_vocabulary, make_sentence

__all__ = [
    "record_added_files",
    "ACCENTS",
    "CORE_TEST_SPEAKERS",
    "DEV_SPEAKERS",
    "Speaker",
    "SynthConfig",
    "SynthCorpus",
    "default_cache_dir",
    "phoneme_inventory",
    "synthesize_corpus",
]

#: Bumped whenever the generator changes what it writes (invalidates cached corpora).
SYNTH_VERSION = 2

#: espeak English voices used as accents, each standing for one TIMIT dialect region.
ACCENTS: dict[str, str] = {
    "dr1": "en-us",
    "dr2": "en-us-nyc",
    "dr3": "en",
    "dr4": "en-gb-x-rp",
    "dr5": "en-gb-scotland",
    "dr6": "en-gb-x-gbclan",
    "dr7": "en-gb-x-gbcwmd",
    "dr8": "en-029",
}

#: The 24 speakers of the TIMIT core test set, by dialect region.
CORE_TEST_SPEAKERS: dict[str, tuple[str, ...]] = {
    "dr1": ("mdab0", "mwbt0", "felc0"),
    "dr2": ("mtas1", "mwew0", "fpas0"),
    "dr3": ("mjmp0", "mlnt0", "fpkt0"),
    "dr4": ("mlll0", "mtls0", "fjlm0"),
    "dr5": ("mbpm0", "mklt0", "fnlp0"),
    "dr6": ("mcmj0", "mjdh0", "fmgd0"),
    "dr7": ("mgrt0", "mnjm0", "fdhc0"),
    "dr8": ("mjln0", "mpam0", "fmld0"),
}

#: The 50 speakers of the standard TIMIT development set.
DEV_SPEAKERS: tuple[str, ...] = (
    "fadg0", "faks0", "fcal1", "fcmh0", "fdac1", "fdms0", "fdrw0", "fedw0", "fgjd0", "fjem0",
    "fjmg0", "fjsj0", "fkms0", "fmah0", "fmml0", "fnmr0", "frew0", "fsem0", "majc0", "mbdg0",
    "mbns0", "mbwm0", "mcsh0", "mdlf0", "mdls0", "mdvc0", "mers0", "mgjf0", "mglb0", "mgwt0",
    "mjar0", "mjfc0", "mjsw0", "mmdb1", "mmdm2", "mmjr0", "mmwh0", "mpdf0", "mrcs0", "mreb0",
    "mrjm4", "mrjr0", "mroa0", "mrtk0", "mrws1", "mtaa0", "mtdt0", "mteb0", "mthc0", "mwjg0",
)

# Variants that do not sound like a person (robots, demons) or have no voicing (whisper).
_EXCLUDED_VARIANTS = frozenset({"Demonic", "UniRobot", "anikaRobot", "whisper", "whisperf"})
_SPLITS = ("train", "valid", "test")
#: The files of ``speech_commands/_background_noise_`` (``.wav``), as :func:`_run_noise` names them.
_NOISE_NAMES = ("white_noise", "pink_noise", "brown_noise", "mains_hum", "babble")
#: What a build writes at the corpus root to describe itself.
_INFO_FILE = "corpus.json"
_CONTENTS_FILE = "contents.tsv"
_NATIVE_SR = 22050


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: a fixed voice and prosody centre.

    Attributes:
        id: TIMIT-style name (``fadg0``) for sentences, 8 hex digits for keywords.
        part: ``"timit"`` or ``"keywords"``.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        dialect: TIMIT dialect region (``dr1`` .. ``dr8``), standing for the accent.
        accent: espeak voice, e.g. ``en-gb-scotland``.
        variant: espeak voice variant, e.g. ``f3``.
        sex: ``"f"`` or ``"m"`` (from the variant).
        pitch: base pitch, espeak units 0-100.
        pitch_range: intonation range, espeak units 0-100.
        rate: speaking rate, words per minute.
    """

    id: str
    part: str
    split: str
    dialect: str
    accent: str
    variant: str
    sex: str
    pitch: int
    pitch_range: int
    rate: int

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"


@dataclass(frozen=True)
class SynthConfig:
    """Sizes and options of the synthesised corpus. All counts are per split
    ``(train, valid, test)``.

    Attributes:
        seed: fixes every random draw (speakers, sentences, prosody, noise).
        timit_speakers: sentence speakers; valid <= 50 and test <= 24 (the standard TIMIT dev
            and core-test names are used).
        sentences_per_speaker: sentences each sentence speaker reads.
        keyword_speakers: keyword speakers.
        keyword_repeats: times each keyword speaker says each of the 35 words.
        vocab_size: words in the sentence vocabulary (function words included).
        snr_db: range of the signal-to-noise ratio, dB, drawn uniformly per utterance.
        noise_probability: share of utterances that get background noise.
        background_seconds: length of each file in ``_background_noise_``.
        sample_rate: output rate in Hz.
    """

    seed: int = 0
    timit_speakers: tuple[int, int, int] = (120, 50, 24)
    sentences_per_speaker: tuple[int, int, int] = (25, 10, 21)
    keyword_speakers: tuple[int, int, int] = (240, 30, 30)
    keyword_repeats: int = 2
    vocab_size: int = 3000
    snr_db: tuple[float, float] = (5.0, 30.0)
    noise_probability: float = 0.85
    background_seconds: float = 60.0
    sample_rate: int = 16000

    @classmethod
    def default(cls, seed: int = 0) -> SynthConfig:
        """The default corpus: 194 sentence speakers and 4,004 sentences, 300 keyword
        speakers and 21,000 keyword clips."""
        return cls(seed=seed)

    @classmethod
    def tiny(cls, seed: int = 0) -> SynthConfig:
        """A corpus for tests, built in seconds: 20 sentences, 175 keyword clips."""
        return cls(
            seed=seed,
            timit_speakers=(4, 2, 2),
            sentences_per_speaker=(3, 2, 2),
            keyword_speakers=(3, 1, 1),
            keyword_repeats=1,
            background_seconds=3.0,
        )

    @classmethod
    def small(cls, seed: int = 0) -> SynthConfig:
        """The tiny corpus's sentences with 16 keyword speakers (12 for training): 560
        keyword clips, built in seconds; enough for a keyword model to generalise to unseen
        speakers a little (``sparse demo --task kws --tiny``)."""
        return dataclasses.replace(cls.tiny(seed), keyword_speakers=(12, 2, 2))

    @classmethod
    def preset(cls, name: str, seed: int = 0) -> SynthConfig:
        """The preset ``name`` ('default', 'small' or 'tiny')."""
        presets = {"default": cls.default, "small": cls.small, "tiny": cls.tiny}
        if name not in presets:
            raise ValueError(f"unknown corpus preset {name!r}; choose from {', '.join(presets)}")
        return presets[name](seed)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        for name in ("timit_speakers", "sentences_per_speaker", "keyword_speakers"):
            value = getattr(self, name)
            if len(value) != 3 or any(int(v) < 0 for v in value):
                raise ValueError(
                    f"{name} must be three counts >= 0 (train, valid, test): {value}"
                )
        if self.timit_speakers[1] > len(DEV_SPEAKERS):
            raise ValueError(f"at most {len(DEV_SPEAKERS)} validation speakers (TIMIT dev names)")
        n_core = sum(len(v) for v in CORE_TEST_SPEAKERS.values())
        if self.timit_speakers[2] > n_core:
            raise ValueError(f"at most {n_core} test speakers (TIMIT core-test names)")
        if self.keyword_repeats < 1:
            raise ValueError("keyword_repeats must be >= 1")
        lo, hi = self.snr_db
        if lo > hi:
            raise ValueError(f"snr_db range is empty: {self.snr_db}")
        if not 0.0 <= self.noise_probability <= 1.0:
            raise ValueError("noise_probability must be in [0, 1]")
        if self.sample_rate < 8000:
            raise ValueError("sample_rate must be at least 8000 Hz")
        if self.background_seconds <= 0:
            raise ValueError("background_seconds must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()
        }

    def key(self) -> str:
        """Short hash of the config and generator version: names the cache folder."""
        blob = json.dumps({"version": SYNTH_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass
class SynthCorpus:
    """A built corpus: where its two parts are and what ``corpus.json`` says about it."""

    root: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def timit_root(self) -> Path:
        return self.root / "timit"

    @property
    def speech_commands_root(self) -> Path:
        return self.root / "speech_commands"


def default_cache_dir() -> Path:
    """``$SPARSE_DATA_DIR`` if set, else ``~/.cache/sparse``."""
    env = os.environ.get("SPARSE_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sparse"


# --------------------------------------------------------------------------------------------
# planning (main process, deterministic)


def _variants() -> dict[str, str]:
    from .espeak import list_variants

    return {
        name: gender for name, gender in list_variants().items()
        if name not in _EXCLUDED_VARIANTS and not name.startswith("robosoft")
    }


def _draw_prosody(rng: np.random.Generator) -> tuple[int, int, int]:
    return int(rng.integers(30, 71)), int(rng.integers(30, 81)), int(rng.integers(135, 206))


def _timit_speakers(config: SynthConfig, rng: np.random.Generator) -> list[Speaker]:
    variants = _variants()
    by_sex = {
        "f": sorted(v for v, g in variants.items() if g == "female"),
        "m": sorted(v for v, g in variants.items() if g == "male"),
    }
    # every (dialect, variant) pair at most once over all splits while pairs last
    pools: dict[tuple[str, str], list[str]] = {}
    for dr in ACCENTS:
        for sex, names in by_sex.items():
            pools[(dr, sex)] = list(rng.permutation(names))
    used_pairs: dict[tuple[str, str], int] = Counter()

    def make(name: str, split: str, dr: str) -> Speaker:
        sex = name[0]
        pool = pools[(dr, sex)]
        variant = pool.pop() if pool else by_sex[sex][used_pairs[(dr, sex)] % len(by_sex[sex])]
        used_pairs[(dr, sex)] += 1
        pitch, prange, rate = _draw_prosody(rng)
        if sex == "f":
            pitch = min(100, pitch + 10)
        return Speaker(
            name, "timit", split, dr, ACCENTS[dr], str(variant), sex, pitch, prange, rate
        )

    n_train, n_valid, n_test = (int(v) for v in config.timit_speakers)
    speakers: list[Speaker] = []
    core = [(dr, name) for dr, names in CORE_TEST_SPEAKERS.items() for name in names]
    # spread the test speakers over the regions: one per region first
    order = sorted(range(len(core)), key=lambda i: (i % 3, i))
    for i in sorted(order[:n_test]):
        dr, name = core[i]
        speakers.append(make(name, "test", dr))
    dev_idx = sorted(rng.choice(len(DEV_SPEAKERS), size=n_valid, replace=False).tolist())
    drs = list(ACCENTS)
    for j, i in enumerate(dev_idx):
        speakers.append(make(DEV_SPEAKERS[i], "valid", drs[j % len(drs)]))
    taken = {s.id for s in speakers} | set(DEV_SPEAKERS)
    taken |= {n for names in CORE_TEST_SPEAKERS.values() for n in names}
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    for j in range(n_train):
        dr = drs[j % len(drs)]
        sex = "f" if rng.random() < 0.35 else "m"
        while True:
            name = sex + "".join(rng.choice(letters, 3)) + str(int(rng.integers(0, 10)))
            if name not in taken:
                break
        taken.add(name)
        speakers.append(make(name, "train", dr))
    return speakers


def _keyword_speakers(config: SynthConfig, rng: np.random.Generator) -> list[Speaker]:
    variants = _variants()
    pairs = [(dr, v) for dr in ACCENTS for v in sorted(variants)]
    order = rng.permutation(len(pairs))
    speakers = []
    taken: set[str] = set()
    k = 0
    for split, n in zip(_SPLITS, config.keyword_speakers, strict=True):
        for _ in range(int(n)):
            dr, variant = pairs[int(order[k % len(order)])]
            k += 1
            while True:
                sid = f"{int(rng.integers(0, 2**32)):08x}"
                if sid not in taken:
                    break
            taken.add(sid)
            pitch, prange, rate = _draw_prosody(rng)
            sex = "f" if variants[variant] == "female" else "m"
            speakers.append(
                Speaker(sid, "keywords", split, dr, ACCENTS[dr], variant, sex, pitch, prange, rate)
            )
    return speakers


@dataclass
class _Task:
    kind: str  # "sentences" | "keywords" | "noise"
    seed: int
    out: str  # temporary corpus root
    config: SynthConfig
    speaker: Speaker | None = None
    items: list[Any] = field(default_factory=list)

    @property
    def cost(self) -> float:
        if self.kind == "sentences":
            return 3.0 * len(self.items)
        if self.kind == "keywords":
            return 0.8 * len(self.items)
        return 0.5 * self.config.background_seconds


def _plan(config: SynthConfig, out: Path) -> tuple[list[Speaker], list[_Task]]:
    root = np.random.SeedSequence(config.seed)
    s_spk, s_txt, s_kw, s_tasks = root.spawn(4)
    timit = _timit_speakers(config, np.random.default_rng(s_spk))
    keywords = _keyword_speakers(config, np.random.default_rng(s_kw))
    vocab = load_vocabulary(config.vocab_size)
    text_rng = np.random.default_rng(s_txt)
    n_tasks = len(timit) + len(keywords) + 1
    task_seeds = iter(np.random.default_rng(s_tasks).integers(0, 2**31, size=n_tasks))
    tasks: list[_Task] = []
    n_per = dict(zip(_SPLITS, config.sentences_per_speaker, strict=True))
    utt = 0
    for spk in timit:
        items = []
        for _ in range(int(n_per[spk.split])):
            utt += 1
            items.append((f"si{utt}", make_sentence(vocab, text_rng)))
        tasks.append(_Task("sentences", int(next(task_seeds)), str(out), config, spk, items))
    for spk in keywords:
        items = [(w, r) for r in range(config.keyword_repeats) for w in KEYWORDS]
        tasks.append(_Task("keywords", int(next(task_seeds)), str(out), config, spk, items))
    tasks.append(_Task("noise", int(next(task_seeds)), str(out), config))
    return timit + keywords, tasks


# --------------------------------------------------------------------------------------------
# work (worker processes)


def _speak(engine: Any, speaker: Speaker, text: str, rng: np.random.Generator, sr: int):
    """Synthesise ``text`` in ``speaker``'s voice with per-utterance prosody.

    Returns ``(audio, segments, words)`` at ``sr`` Hz, labels in samples of ``audio``.
    """
    rate = int(np.clip(round(speaker.rate * rng.uniform(0.88, 1.12)), 80, 450))
    pitch = int(np.clip(speaker.pitch + rng.integers(-6, 7), 0, 100))
    prange = int(np.clip(speaker.pitch_range + rng.integers(-10, 11), 0, 100))
    volume = int(rng.integers(80, 121))
    syn = engine.synthesize(
        text, voice=speaker.voice, rate=rate, pitch=pitch, pitch_range=prange, volume=volume,
        seed=int(rng.integers(0, 2**31)),
    )
    segs, words = align(syn, speaker.accent, strict=False)
    audio = resample(syn.audio.astype(np.float32) / 32768.0, syn.sample_rate, sr)
    ratio = sr / syn.sample_rate
    segs = rescale(segs, ratio, 0, len(audio))
    for w in words:
        w.start = int(round(w.start * ratio))
        w.end = int(round(w.end * ratio))
    return audio, segs, words


def _speech_span(segs: list[Segment]) -> tuple[int, int]:
    inner = [s for s in segs if s.label not in ("h#", "pau")]
    if not inner:
        return 0, segs[-1].end
    return inner[0].start, inner[-1].end


def _finish(x: np.ndarray, span: slice, rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    """Random loudness, then background noise at a random SNR; clipped to [-1, 1)."""
    peak = float(np.max(np.abs(x[span]))) if x[span].size else 0.0
    if peak > 0:
        x = x * (10.0 ** (rng.uniform(-18.0, -2.0) / 20.0) / peak)
    if rng.random() < cfg.noise_probability:
        noise = random_noise(len(x), cfg.sample_rate, rng)
        x = mix_at_snr(x, noise, float(rng.uniform(*cfg.snr_db)), span)
    return np.clip(x, -1.0, 32767 / 32768).astype(np.float32)


def _write_wav(path: Path, x: np.ndarray, sr: int) -> None:
    """16-bit PCM RIFF wav, mono. (The standard library's writer: libsndfile's close() syncs
    every file to disk, which made writing the slowest step of the build.)"""
    import wave

    pcm = np.round(np.clip(x, -1.0, 32767 / 32768) * 32768.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sr))
        w.writeframes(pcm.tobytes())


def _run_sentences(task: _Task, engine: Any) -> list[dict[str, Any]]:
    spk, cfg = task.speaker, task.config
    assert spk is not None
    sr = cfg.sample_rate
    rng = np.random.default_rng(task.seed)
    folder = "train" if spk.split == "train" else "test"
    d = Path(task.out) / "timit" / folder / spk.dialect / spk.id
    d.mkdir(parents=True, exist_ok=True)
    records = []
    for utt_id, words in task.items:
        text = " ".join(words)
        audio, segs, wsegs = _speak(engine, spk, text + ".", rng, sr)
        lead = int(rng.uniform(0.05, 0.3) * sr)
        trail = int(rng.uniform(0.05, 0.3) * sr)
        total = lead + len(audio) + trail
        x = np.zeros(total, dtype=np.float32)
        x[lead : lead + len(audio)] = audio
        segs = rescale(segs, 1.0, lead, total)
        a, b = _speech_span(segs)
        x = _finish(x, slice(a, b), rng, cfg)
        _write_wav(d / f"{utt_id}.wav", x, sr)
        (d / f"{utt_id}.phn").write_text("".join(f"{s.start} {s.end} {s.label}\n" for s in segs))
        (d / f"{utt_id}.wrd").write_text(
            "".join(f"{w.start + lead} {w.end + lead} {w.word}\n" for w in wsegs)
        )
        sentence = text[:1].upper() + text[1:] + "."
        (d / f"{utt_id}.txt").write_text(f"0 {total} {sentence}\n")
        records.append({
            "part": "timit", "split": spk.split, "speaker": spk.id, "id": f"{spk.id}_{utt_id}",
            "path": f"timit/{folder}/{spk.dialect}/{spk.id}/{utt_id}.wav",
            "duration": total / sr, "phones": [s.label for s in segs],
        })
    return records


def _run_keywords(task: _Task, engine: Any) -> list[dict[str, Any]]:
    spk, cfg = task.speaker, task.config
    assert spk is not None
    sr = cfg.sample_rate
    rng = np.random.default_rng(task.seed)
    root = Path(task.out) / "speech_commands"
    records = []
    for word, rep in task.items:
        audio, segs, _ = _speak(engine, spk, word, rng, sr)
        a, b = _speech_span(segs)
        a = max(0, a - int(0.02 * sr))
        b = min(len(audio), b + int(0.04 * sr))
        speech = audio[a:b]
        cropped = len(speech) > sr
        if cropped:  # keep the middle second
            start = (len(speech) - sr) // 2
            speech = speech[start : start + sr]
        x = np.zeros(sr, dtype=np.float32)
        offset = int(rng.integers(0, sr - len(speech) + 1))
        x[offset : offset + len(speech)] = speech
        x = _finish(x, slice(offset, offset + len(speech)), rng, cfg)
        (root / word).mkdir(parents=True, exist_ok=True)
        rel = f"{word}/{spk.id}_nohash_{rep}.wav"
        _write_wav(root / rel, x, sr)
        records.append({
            "part": "keywords", "split": spk.split, "speaker": spk.id, "id": rel[:-4],
            "path": f"speech_commands/{rel}", "duration": 1.0, "label": word,
            "cropped": cropped,
        })
    return records


def _run_noise(task: _Task, engine: Any) -> list[dict[str, Any]]:
    cfg = task.config
    sr = cfg.sample_rate
    rng = np.random.default_rng(task.seed)
    n = int(cfg.background_seconds * sr)
    d = Path(task.out) / "speech_commands" / "_background_noise_"
    d.mkdir(parents=True, exist_ok=True)
    noises = {
        "white_noise": coloured_noise(n, rng, 0.0),
        "pink_noise": coloured_noise(n, rng, 1.0),
        "brown_noise": coloured_noise(n, rng, 2.0),
        "mains_hum": hum(n, sr, rng),
    }
    # babble: four streams of sentences in random voices, summed
    vocab = load_vocabulary(cfg.vocab_size)
    variants = sorted(_variants())
    babble = np.zeros(n, dtype=np.float32)
    for _ in range(4):
        pos = int(rng.integers(0, sr // 2))
        while pos < n:
            dr = list(ACCENTS)[int(rng.integers(len(ACCENTS)))]
            spk = Speaker("babble", "noise", "-", dr, ACCENTS[dr],
                          variants[int(rng.integers(len(variants)))], "m", *_draw_prosody(rng))
            audio, _, _ = _speak(engine, spk, " ".join(make_sentence(vocab, rng)), rng, sr)
            m = min(len(audio), n - pos)
            babble[pos : pos + m] += audio[:m] / (np.max(np.abs(audio)) + 1e-9)
            pos += m + int(rng.integers(0, sr // 4))
    noises["babble"] = babble / (float(np.sqrt(np.mean(babble**2))) or 1.0)
    records = []
    for name, x in noises.items():
        x = np.clip(x * 0.1, -1.0, 32767 / 32768)
        _write_wav(d / f"{name}.wav", x, sr)
        records.append({
            "part": "background", "split": "-", "speaker": "-", "id": name,
            "path": f"speech_commands/_background_noise_/{name}.wav",
            "duration": n / sr,
        })
    return records


def _run_task(task: _Task) -> list[dict[str, Any]]:
    from .espeak import fresh_engine

    # a pristine engine per task: the task's audio depends only on the task
    with fresh_engine() as engine:
        if task.kind == "sentences":
            return _run_sentences(task, engine)
        if task.kind == "keywords":
            return _run_keywords(task, engine)
        return _run_noise(task, engine)


# --------------------------------------------------------------------------------------------
# the entry point


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _read_info(root: Path) -> dict[str, Any] | None:
    """The content of ``root/corpus.json`` if it is one that this module wrote, else ``None``."""
    try:
        info = json.loads((root / _INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("key"), str):
        return None
    if not isinstance(info.get("config"), dict) or "version" not in info:
        return None
    return info


def _dir_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _map_tasks(
    tasks: list[_Task], workers: int, progress: Callable[[int, int], None] | None
) -> Iterable[list[dict[str, Any]]]:
    tasks = sorted(tasks, key=lambda t: -t.cost)  # longest first: better balance
    if workers <= 1:
        for i, t in enumerate(tasks):
            yield _run_task(t)
            if progress:
                progress(i + 1, len(tasks))
        return
    # fork where it is safe (Linux): workers use only numpy, soundfile and their own private
    # espeak engine, and an unguarded script or notebook is not re-imported in every worker
    use_fork = sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()
    ctx = mp.get_context("fork" if use_fork else "spawn")
    with ctx.Pool(workers) as pool:
        for i, rec in enumerate(pool.imap_unordered(_run_task, tasks, chunksize=1)):
            yield rec
            if progress:
                progress(i + 1, len(tasks))


def synthesize_corpus(
    config: SynthConfig | None = None,
    root: str | Path | None = None,
    workers: int | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SynthCorpus:
    """Build the corpus for ``config`` (or find it already built) and return where it is.

    ``root`` may be missing or an empty folder. A folder that holds a corpus of another config
    is rebuilt only with ``force``, and only when it holds nothing but what an earlier build
    wrote there (``contents.tsv`` lists it; for a corpus written before that list existed, the
    layout its ``corpus.json`` describes): the old files are deleted, one by one, once the new
    corpus is complete. Anything else in the folder, such as a note or a folder of one's own,
    makes the call fail before any work and names it; nothing is deleted then. A folder that
    holds no corpus at all is never rebuilt, ``force`` or not.

    Args:
        config: sizes and seed; :meth:`SynthConfig.default` if ``None``.
        root: the corpus folder; default ``default_cache_dir() / f"synth-{config.key()}"``.
        workers: processes to use; default all usable CPUs.
        force: rebuild even if ``root`` holds a complete corpus (of any config), under the
            rules above.
        progress: called as ``progress(done_tasks, total_tasks)`` while building.

    Returns:
        The :class:`SynthCorpus`; ``info`` is the content of ``corpus.json``.

    Raises:
        FileExistsError: ``root`` is not a corpus folder, or is a corpus of another config and
            ``force`` is false, or holds entries a build did not write.
        sparse.train.lock.LockError: another process is rebuilding ``root`` with ``force``
            (the message names it).
    """
    # imported here: worker processes import this module and need none of it
    from ..train.lock import check_not_replaced, replacement_lock

    config = config or SynthConfig.default()
    config.validate()
    root = Path(root) if root is not None else default_cache_dir() / f"synth-{config.key()}"
    if not force:
        check_not_replaced(root)
        info = _read_info(root)
        if info is not None and info.get("key") == config.key():
            return SynthCorpus(root, info)
        return _build(config, root, workers, False, progress)
    with replacement_lock(root):  # one rebuild at a time; the second is refused at once
        return _build(config, root, workers, True, progress)


def _build(
    config: SynthConfig,
    root: Path,
    workers: int | None,
    force: bool,
    progress: Callable[[int, int], None] | None,
) -> SynthCorpus:
    """Build the corpus into a temporary sibling of ``root`` and put it in place (see
    :func:`synthesize_corpus`)."""
    _check_target(root, force)  # fail before the build, not after it
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(root)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    old: Path | None = None
    try:
        t0 = time.perf_counter()
        speakers, tasks = _plan(config, tmp)
        n_workers = max(1, min(workers or _usable_cpus(), len(tasks)))
        records: list[dict[str, Any]] = []
        for rec in _map_tasks(tasks, n_workers, progress):
            records.extend(rec)
        _write_lists(tmp, records)
        _write_speakers(tmp, speakers)
        _write_contents(tmp)
        info = _summary(config, records, speakers, time.perf_counter() - t0, n_workers)
        info["contents"] = _CONTENTS_FILE
        info["size_bytes"] = _dir_size(tmp)
        (tmp / _INFO_FILE).write_text(json.dumps(info, indent=1, sort_keys=True))
        # one process at a time swaps folders in root's parent (concurrent builds of one root)
        with _folder_lock(root.parent):
            if _is_empty_dir(root):
                root.rmdir()
            if os.path.lexists(root):
                if not force:  # another process finished first
                    shutil.rmtree(tmp, ignore_errors=True)
                    existing = _read_info(root)
                    if existing and existing.get("key") == config.key():
                        return SynthCorpus(root, existing)
                    raise FileExistsError(f"{root} appeared while building; not overwriting it")
                _check_target(root, force)
                old = root.parent / f".{root.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                _swap(root, old, tmp)
            else:
                _swap(root, None, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        kept = _remove_corpus(old)
        if kept:
            warnings.warn(
                f"{old} still holds {_name_some(kept)}, which appeared while {root} was being "
                "rebuilt; they were left there",
                stacklevel=3,  # the caller of synthesize_corpus
            )
    return SynthCorpus(root, info)


def _remove_stale_builds(root: Path) -> None:
    """Clear what builds of ``root`` whose process is gone (killed) left: their temporary
    folders, and old corpora set aside for deletion (only the files those corpora list)."""
    for tmp in root.parent.glob(f".{glob.escape(root.name)}.*-*-*"):
        kind, _, rest = tmp.name[len(root.name) + 2 :].partition("-")  # .<name>.<kind>-...
        if kind not in ("tmp", "old"):
            continue
        try:
            pid = int(rest.split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            if kind == "tmp":  # a build's own folder, never handed out
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                _remove_corpus(tmp)
        except (PermissionError, OSError):
            pass  # alive (or not ours to judge): leave it


# --------------------------------------------------------------------------------------------
# what a corpus folder holds: the entries a build wrote, and anything else


@dataclass
class _Contents:
    """The entries a build wrote under a corpus root: ``files`` maps a relative path to its
    size in bytes (``None``: not recorded), ``dirs`` holds relative folder paths."""

    files: dict[str, int | None]
    dirs: set[str]


def _write_contents(root: Path) -> None:
    """Record every file (with its size) and folder under ``root`` in ``contents.tsv``."""
    lines = ["path\tbytes"]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        if prefix:
            lines.append(f"{prefix}\t")
        for name in sorted(filenames):
            if prefix or name not in (_INFO_FILE, _CONTENTS_FILE):
                lines.append(f"{prefix}{name}\t{os.path.getsize(os.path.join(dirpath, name))}")
    (root / _CONTENTS_FILE).write_text("\n".join(lines) + "\n")


def record_added_files(root: Path, paths: list[Path]) -> None:
    """Add ``paths`` (files written into the corpus at ``root`` after its build, e.g. its
    spike version) and their folders to ``contents.tsv``, so that a rebuild (``force``)
    deletes them with the rest instead of refusing the folder. Entries already listed are
    updated in place; a corpus without the list is left alone."""
    listing = Path(root) / _CONTENTS_FILE
    if not listing.is_file():
        return
    lines = listing.read_text().splitlines()
    known = {line.partition("\t")[0]: k for k, line in enumerate(lines)}
    for path in paths:
        rel = Path(path).relative_to(root)
        for parent in reversed(rel.parents[:-1]):
            if f"{parent.as_posix()}/" not in known:
                known[f"{parent.as_posix()}/"] = len(lines)
                lines.append(f"{parent.as_posix()}/\t")
        entry = f"{rel.as_posix()}\t{os.path.getsize(path)}"
        if rel.as_posix() in known:
            lines[known[rel.as_posix()]] = entry
        else:
            known[rel.as_posix()] = len(lines)
            lines.append(entry)
    atomic.write_text(listing, "\n".join(lines) + "\n")


def _read_contents(root: Path, info: dict[str, Any]) -> _Contents | str:
    """What the build of the corpus at ``root`` wrote there, or why that cannot be known."""
    if "contents" not in info:
        return _layout_contents(info)
    files: dict[str, int | None] = {_INFO_FILE: None, _CONTENTS_FILE: None}
    dirs: set[str] = set()
    try:
        lines = (root / _CONTENTS_FILE).read_text().splitlines()
    except OSError:
        return f"its list of files ({_CONTENTS_FILE}) is missing or unreadable"
    if not lines or lines[0] != "path\tbytes":
        return f"its list of files ({_CONTENTS_FILE}) is not in the expected format"
    for line in lines[1:]:
        path, _, size = line.partition("\t")
        if path.endswith("/"):
            dirs.add(path[:-1])
        elif size.isdigit():
            files[path] = int(size)
        else:
            return f"its list of files ({_CONTENTS_FILE}) is not in the expected format"
    return _Contents(files, dirs)


def _layout_contents(info: dict[str, Any]) -> _Contents | str:
    """The entries the generator writes for the config in ``info`` (a corpus written before
    ``contents.tsv`` existed, by a generator that writes the same files as this one)."""
    older = "it was written by an older version of sparse and does not list its files"
    if info.get("version") != SYNTH_VERSION:
        return older
    try:
        config = SynthConfig(**{
            k: tuple(v) if isinstance(v, list) else v for k, v in info["config"].items()
        })
        config.validate()
    except (TypeError, ValueError):
        return older
    if config.key() != info.get("key"):
        return older
    speakers, tasks = _plan(config, Path())
    files = ["speakers.tsv", "speech_commands/validation_list.txt",
             "speech_commands/testing_list.txt"]
    files += [f"speech_commands/_background_noise_/{n}.wav" for n in _NOISE_NAMES]
    for task in tasks:
        spk = task.speaker
        if task.kind == "sentences" and spk is not None:
            folder = "train" if spk.split == "train" else "test"
            d = f"timit/{folder}/{spk.dialect}/{spk.id}"
            files += [f"{d}/{utt}.{ext}" for utt, _ in task.items
                      for ext in ("wav", "phn", "wrd", "txt")]
        elif task.kind == "keywords" and spk is not None:
            files += [f"speech_commands/{word}/{spk.id}_nohash_{rep}.wav"
                      for word, rep in task.items]
    dirs = {p.as_posix() for f in files for p in Path(f).parents if p != Path(".")}
    return _Contents({_INFO_FILE: None, **dict.fromkeys(files)}, dirs)


def _scan(root: Path, contents: _Contents) -> tuple[list[Path], list[Path], list[str]]:
    """Walk ``root`` (never through links): the files and folders ``contents`` lists, in
    walking order, and the relative paths of every other entry (a folder's with a trailing
    ``/``, not entered). A listed file whose size changed counts as another entry."""
    files: list[Path] = []
    dirs: list[Path] = []
    foreign: list[str] = []

    def visit(folder: Path, prefix: str) -> None:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            rel = prefix + e.name
            if e.is_dir(follow_symlinks=False):
                if rel in contents.dirs:
                    dirs.append(Path(e.path))
                    visit(Path(e.path), rel + "/")
                else:
                    foreign.append(rel + "/")
            elif not e.is_file(follow_symlinks=False) or rel not in contents.files:
                foreign.append(rel)
            elif contents.files[rel] in (None, e.stat(follow_symlinks=False).st_size):
                files.append(Path(e.path))
            else:
                foreign.append(f"{rel} (changed)")

    visit(root, "")
    return files, dirs, foreign


def _name_some(entries: list[str], n: int = 8) -> str:
    shown = ", ".join(entries[:n])
    return shown + (f" and {len(entries) - n} more" if len(entries) > n else "")


def _is_empty_dir(path: Path) -> bool:
    try:
        return path.is_dir() and not path.is_symlink() and not any(path.iterdir())
    except OSError:
        return False


def _check_target(root: Path, force: bool) -> None:
    """Raise ``FileExistsError`` unless a build may go to ``root``: missing, an empty folder,
    or (with ``force``) a corpus folder that holds only what its build wrote."""
    try:
        if not os.path.lexists(root) or _is_empty_dir(root):
            return
        if root.is_symlink() or not root.is_dir():
            raise FileExistsError(
                f"{root} exists and is not a folder (or is a link to one); nothing was changed. "
                "Give a new or empty folder for the corpus."
            )
        info = _read_info(root)
        if info is None:
            raise FileExistsError(
                f"{root} already exists and is not a corpus folder made by sparse synth (it has "
                f"no {_INFO_FILE} written by it); nothing in it was changed. Choose a new or "
                "empty folder for the corpus."
            )
        if not force:
            raise FileExistsError(
                f"{root} holds a corpus built with other options (key {info['key']}); choose "
                "another folder, or rebuild this one with force=True (--force)"
            )
        contents = _read_contents(root, info)
        if isinstance(contents, str):
            raise FileExistsError(
                f"{root} holds a corpus, but {contents}, so its files cannot be told apart from "
                "any others there; nothing was changed. Choose a new or empty folder for the "
                "corpus."
            )
        foreign = _scan(root, contents)[2]
    except FileNotFoundError:
        return  # another build is replacing root right now; the check under the lock decides
    if foreign:
        raise FileExistsError(
            f"{root} holds a corpus, and also {len(foreign)} "
            f"{'entry' if len(foreign) == 1 else 'entries'} that sparse synth did not write, "
            f"or that changed since it did: {_name_some(foreign)}. A rebuild deletes only the "
            "corpus's own files and does not build around others, which would be mixed into "
            "the data; nothing was changed. Move those entries out of the folder and run "
            "again, or choose another folder for the corpus."
        )


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (released when the process dies)."""
    if fcntl is None:  # pragma: no cover - Windows: no lock, the swap reports a clash
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _swap(root: Path, old: Path | None, new: Path) -> None:
    """Put ``new`` at ``root``, first moving the corpus there (if ``old``) to ``old``."""
    try:
        if old is not None:
            os.rename(root, old)
        try:
            os.replace(new, root)
        except OSError:
            if old is not None:
                os.rename(old, root)
            raise
    except OSError as exc:
        raise FileExistsError(
            f"{root} was changed by another process while this build was being put in place "
            f"({exc.strerror}); the folder was left as it was. Run the command again."
        ) from exc


def _remove_corpus(folder: Path) -> list[str]:
    """Delete from ``folder`` the files and folders its corpus build wrote there, then the
    folder if it is empty; return the other entries (left in place), all of them when the
    folder's contents cannot be known."""
    info = _read_info(folder)
    contents = _read_contents(folder, info) if info is not None else "no corpus"
    try:
        if isinstance(contents, str):
            left = sorted(os.listdir(folder))
            if not left:  # a removal killed after its last file
                folder.rmdir()
            return left
        files, dirs, foreign = _scan(folder, contents)
        record = [folder / _INFO_FILE, folder / _CONTENTS_FILE]
        for path in files:  # the description last: a killed removal can be finished
            if path not in record:
                path.unlink(missing_ok=True)
        for path in reversed(dirs):  # children before their parents
            try:
                path.rmdir()
            except OSError:
                pass
        for path in reversed(record):
            path.unlink(missing_ok=True)
        if not foreign:
            folder.rmdir()
        return foreign
    except FileNotFoundError:
        return []


def _write_lists(root: Path, records: list[dict[str, Any]]) -> None:
    sc = root / "speech_commands"
    sc.mkdir(parents=True, exist_ok=True)
    for split, name in (("valid", "validation_list.txt"), ("test", "testing_list.txt")):
        rels = sorted(
            r["path"].split("/", 1)[1] for r in records
            if r["part"] == "keywords" and r["split"] == split
        )
        (sc / name).write_text("".join(f"{p}\n" for p in rels))


def _write_speakers(root: Path, speakers: list[Speaker]) -> None:
    cols = [f.name for f in dataclasses.fields(Speaker)]
    lines = ["\t".join(cols)]
    lines += ["\t".join(str(getattr(s, c)) for c in cols) for s in speakers]
    (root / "speakers.tsv").write_text("\n".join(lines) + "\n")


def _summary(
    config: SynthConfig, records: list[dict[str, Any]], speakers: list[Speaker],
    seconds: float, workers: int,
) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {"timit": {}, "keywords": {}}
    hours: dict[str, float] = {"timit": 0.0, "keywords": 0.0}
    spk_counts: dict[str, dict[str, int]] = {"timit": {}, "keywords": {}}
    for part in ("timit", "keywords"):
        for split in _SPLITS:
            counts[part][split] = sum(
                1 for r in records if r["part"] == part and r["split"] == split
            )
            spk_counts[part][split] = sum(
                1 for s in speakers if s.part == part and s.split == split
            )
        hours[part] = sum(r["duration"] for r in records if r["part"] == part) / 3600.0
    return {
        "key": config.key(),
        "version": SYNTH_VERSION,
        "config": config.to_dict(),
        "utterances": counts,
        "speakers": spk_counts,
        "hours": hours,
        "keywords_cropped": sum(1 for r in records if r.get("cropped")),
        "generation_seconds": round(seconds, 2),
        "workers": workers,
        "python": sys.version.split()[0],
    }


def phoneme_inventory(
    words: Iterable[str],
    accents: Iterable[str] | None = None,
    chunk: int = 150,
    method: str = "synthesis",
) -> dict[str, dict[str, int]]:
    """Every phoneme mnemonic the engine emits when it speaks ``words``, per accent.

    The words are spoken in runs of ``chunk`` (as sentences, so that cross-word effects such
    as linking r show up).

    Args:
        words: the words.
        accents: espeak voices; default all of :data:`ACCENTS`.
        chunk: words per run.
        method: ``"synthesis"`` collects the phoneme events of real synthesis (at the fastest
            rate); ``"text"`` asks the engine's text-to-phoneme translation, ~40 times faster,
            which gives the same phonemes less the pauses.

    Returns:
        ``{mnemonic: {accent: count}}``.
    """
    from .espeak import fresh_engine

    if method not in ("synthesis", "text"):
        raise ValueError(f"method must be 'synthesis' or 'text', got {method!r}")
    words = list(words)
    out: dict[str, dict[str, int]] = {}
    with fresh_engine() as engine:
        for accent in accents or ACCENTS.values():
            for i in range(0, len(words), chunk):
                text = " ".join(words[i : i + chunk])
                if method == "text":
                    names = engine.text_to_phonemes(text, voice=accent)
                else:
                    syn = engine.synthesize(text, voice=accent, rate=450)
                    names = [ev.name for ev in syn.phonemes]
                for name in names:
                    out.setdefault(name, {}).setdefault(accent, 0)
                    out[name][accent] += 1
    return out
