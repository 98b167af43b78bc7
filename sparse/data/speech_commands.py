"""Google Speech Commands, v1 or v2 layout (and the synthesised keyword corpus).

Layout: ``<root>/<word>/<speaker>_nohash_<k>.wav`` (1 s, 16 kHz), ``validation_list.txt`` and
``testing_list.txt`` (paths relative to the root; everything else is training data; a line
that names no clip is an error, see :mod:`sparse.data.lists`) and ``_background_noise_/*.wav``.

Tasks:

* ``"all"`` (alias ``"35"``): every word folder is a class (35 in v2, 30 in v1);
* ``"12"``: ``yes no up down left right on off stop go``, every other word as ``_unknown_``,
  and ``_silence_`` clips cut from the background noise files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audio import AudioError, resample
from .lists import assign_splits
from .manifest import AudioDataset, ManifestEntry
from .words import KWS12_WORDS

__all__ = ["SpeechCommandsDataset", "UNKNOWN", "SILENCE"]

UNKNOWN = "_unknown_"
SILENCE = "_silence_"
_BACKGROUND = "_background_noise_"
_SPLITS = ("train", "valid", "test")


def _list_files(root: Path) -> dict[str, Path]:
    lists = {"valid": root / "validation_list.txt", "test": root / "testing_list.txt"}
    for path in lists.values():
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: a Speech Commands folder has validation_list.txt and "
                "testing_list.txt"
            )
    return lists


class SpeechCommandsDataset(AudioDataset):
    """Speech Commands as a keyword classification dataset.

    Args:
        root: the folder holding the word folders and the two list files.
        split: ``"train"``, ``"valid"`` or ``"test"`` (official lists).
        task: ``"all"``/``"35"`` or ``"12"``.
        sample_rate: rate of the returned waveforms, Hz.
        clip_seconds: every waveform is zero-padded (or cut) to this length; ``None`` keeps
            each file's own length.
        silence_fraction: ``"12"`` task only: ``_silence_`` clips added, as a share of the
            split's word clips.
        unknown_fraction: ``"12"`` task only: keep this share of the ``_unknown_`` clips
            (``None`` keeps them all). The choice is a fixed hash of the file name.
        on_error: ``"raise"`` or ``"skip"`` for unreadable audio files.
        seed: places the ``_silence_`` cuts.

    Attributes:
        classes: class names; ``label_index`` indexes this list.

    Items (dicts): ``id``, ``speaker``, ``waveform`` (float32 tensor ``(num_samples,)``),
    ``sample_rate``, ``label`` (class name), ``label_index`` (int).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        task: str = "all",
        sample_rate: int = 16000,
        clip_seconds: float | None = 1.0,
        silence_fraction: float = 0.1,
        unknown_fraction: float | None = None,
        on_error: str = "raise",
        seed: int = 0,
    ) -> None:
        super().__init__(sample_rate, on_error)
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        task = {"35": "all"}.get(str(task), str(task))
        if task not in ("all", "12"):
            raise ValueError(f"task must be 'all' (or '35') or '12', got {task!r}")
        self.root = Path(root)
        self.split, self.task = split, task
        self.clip_seconds = clip_seconds
        if not self.root.is_dir():
            raise FileNotFoundError(f"Speech Commands folder {self.root} not found")
        lists = _list_files(self.root)
        words = sorted(
            d.name for d in self.root.iterdir()
            if d.is_dir() and not d.name.startswith((".", "_"))
        )
        if not words:
            raise FileNotFoundError(f"{self.root} has no word folders")
        if task == "all":
            self.classes = list(words)
        else:
            self.classes = [*KWS12_WORDS, UNKNOWN, SILENCE]
        clips = [
            (f"{word}/{f.name}", word, f)
            for word in words for f in sorted((self.root / word).iterdir())
            if f.suffix.lower() == ".wav"
        ]
        # every list line must match a clip: one that matches none would leave the clip it
        # meant in the training data
        listed = assign_splits(self.root, lists, [rel for rel, _, _ in clips])
        candidates = []
        for rel, word, f in clips:
            if listed.get(rel, "train") != split:
                continue
            label = word
            if task == "12" and word not in KWS12_WORDS:
                label = UNKNOWN
                if unknown_fraction is not None and _unit_hash(rel) >= unknown_fraction:
                    continue
            candidates.append((rel, label, f))
        for (rel, label, f), frames, sr in self._check_files(candidates, lambda c: c[2]):
            self.manifest.append(ManifestEntry(
                id=rel[: -len(f.suffix)], path=str(f), duration=frames / sr,
                speaker=f.name.split("_nohash_")[0] if "_nohash_" in f.name else f.stem,
                label=label, split=split,
            ))
        if task == "12" and silence_fraction > 0:
            self._add_silence(silence_fraction, seed)
        if clip_seconds is not None:
            for e in self.manifest:
                e.duration = float(clip_seconds)
        self._index = {c: i for i, c in enumerate(self.classes)}

    def _add_silence(self, fraction: float, seed: int) -> None:
        bg = self.root / _BACKGROUND
        files = sorted(p for p in bg.glob("*.wav")) if bg.is_dir() else []
        if not files:
            raise FileNotFoundError(
                f"the 12-class task cuts {SILENCE} clips from {bg}/*.wav, and there are none"
            )
        good = self._check_files(files, lambda p: p)
        clip = self.clip_seconds or 1.0
        n = int(round(fraction * len(self.manifest)))
        rng = np.random.default_rng([seed, _SPLITS.index(self.split)])
        for i in range(n):
            f, frames, sr = good[int(rng.integers(len(good)))]
            length = int(clip * sr)
            offset = int(rng.integers(0, max(1, frames - length)))
            self.manifest.append(ManifestEntry(
                id=f"{SILENCE}/{self.split}_{i}", path=str(f), duration=clip, speaker="",
                label=SILENCE, split=self.split,
                extra={"offset": offset, "frames": length, "gain": float(rng.uniform(0, 1))},
            ))

    def _item(self, entry: ManifestEntry) -> dict[str, Any]:
        x = self._cut(entry) if "offset" in entry.extra else self._load(entry)
        if self.clip_seconds is not None:
            n = int(round(self.clip_seconds * self.sample_rate))
            x = np.pad(x, (0, max(0, n - len(x))))[:n]
        return {
            "id": entry.id,
            "speaker": entry.speaker,
            "waveform": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            "sample_rate": self.sample_rate,
            "label": entry.label,
            "label_index": self._index[entry.label],
        }

    def _cut(self, entry: ManifestEntry) -> np.ndarray:
        """A ``_silence_`` clip: a stretch of a background-noise file at a random gain."""
        import soundfile as sf

        try:
            raw, sr = sf.read(
                entry.path, start=entry.extra["offset"], frames=entry.extra["frames"],
                dtype="float32", always_2d=True,
            )
        except Exception as exc:
            raise AudioError(entry.path, f"unreadable or corrupt audio ({exc})") from exc
        return resample(raw.mean(axis=1), sr, self.sample_rate) * entry.extra["gain"]


def _unit_hash(name: str) -> float:
    """A stable number in [0, 1) from a name."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 2**32
